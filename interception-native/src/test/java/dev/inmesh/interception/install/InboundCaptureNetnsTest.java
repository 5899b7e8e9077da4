package dev.inmesh.interception.install;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.inmesh.interception.rules.CaptureConfig;
import dev.inmesh.interception.rules.RuleGenerator;
import dev.inmesh.interception.testing.NetnsSupport;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** A peer in one namespace connects over a veth pair to a workload namespace whose inbound traffic is captured. */
@Tag("netns")
class InboundCaptureNetnsTest {
    private static final CaptureConfig INBOUND_ALL = CaptureConfig.builder().inboundPorts("*").build();

    private NetnsSupport workload;
    private NetnsSupport peer;

    @BeforeEach
    void createNamespaces() {
        NetnsSupport.assumeAvailable();
        workload = NetnsSupport.create("inm-wl");
        peer = NetnsSupport.create("inm-peer");
        workload.connect(peer, "10.77.0.1/24", "10.77.0.2/24");
    }

    @AfterEach
    void deleteNamespaces() {
        if (peer != null) {
            peer.close();
        }
        if (workload != null) {
            workload.close();
        }
    }

    @Test
    void aConnectionToAnyInboundPortArrivesAtTheInboundCapturePort() throws Exception {
        new RuleInstaller(ProcessCommandRunner.inNamespace(workload.name()), INBOUND_ALL,
                RuleGenerator.generate(INBOUND_ALL), line -> { }).install(true);
        ServerSocket capture = workload.inside(() -> {
            ServerSocket s = new ServerSocket();
            s.bind(new InetSocketAddress("0.0.0.0", 15006));
            s.setSoTimeout(5_000);
            return s;
        });
        try (capture) {
            peer.inside(() -> {
                try (Socket s = new Socket()) {
                    s.connect(new InetSocketAddress("10.77.0.1", 9080), 2_000);
                }
                return null;
            });
            try (Socket accepted = capture.accept()) {
                assertEquals("10.77.0.2", ((InetSocketAddress) accepted.getRemoteSocketAddress()).getHostString());
            }
        }
    }

    @Test
    void withoutTheRulesNothingListensOnTheApplicationPort() {
        assertThrows(IOException.class, () -> peer.inside(() -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("10.77.0.1", 9080), 2_000);
            }
            return null;
        }));
    }
}
