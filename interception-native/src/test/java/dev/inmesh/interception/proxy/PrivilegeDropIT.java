package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The packaged proxy started as root with {@code --uid}, as Istio's sidecar user: what it leaves behind once stopped.
 * Runs after {@code package} (failsafe); skips itself without root.
 */
@Timeout(90)
class PrivilegeDropIT {
    private static final int PROXY_UID = 1337;

    private Path dir;
    private Process proxy;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        NetnsProcesses.remove(dir);
    }

    @Test
    void aProxyThatBecameItsUserLeavesNoDirectoryOfItsOwnInTheTemporaryDirectory() throws Exception {
        Assumptions.assumeTrue(PrivilegeDrop.isRoot(), "needs root, to become UID 1337");
        dir = NetnsProcesses.workDir("inmesh-uid-it");
        // a temporary directory as /tmp is: anyone writes in it, only an entry's owner deletes it
        Path tmp = Files.createDirectory(dir.resolve("tmp"));
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxrwxrwx"));
        Files.setAttribute(tmp, "unix:mode", 01777);
        Path config = Files.writeString(dir.resolve("proxy.yaml"), "static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("l", LoopbackProxy.freePort(), "")
                + Http1RequestsTest.clusterC(LoopbackProxy.freePort()));
        Path err = dir.resolve("proxy.err");
        ProcessBuilder b = new ProcessBuilder(NetnsProcesses.javaBin(), "-Djava.io.tmpdir=" + tmp,
                "-Dvertx.cacheDirBase=" + tmp.resolve("vertx-cache"), "-jar", dir.resolve("inmesh.jar").toString(),
                "proxy", "-c", config.toString(), "--uid", Integer.toString(PROXY_UID), "--no-admin")
                .redirectErrorStream(true).redirectOutput(err.toFile());
        b.environment().put("TERMINATION_DRAIN_DURATION_SECONDS", "0");
        proxy = b.start();
        NetnsProcesses.awaitProxy(proxy, err, 60);
        assertTrue(Files.readString(err).contains("running as uid " + PROXY_UID), Files.readString(err));
        proxy.destroy();
        assertTrue(proxy.waitFor(30, TimeUnit.SECONDS), "the proxy did not stop");
        try (Stream<Path> left = Files.list(tmp)) {
            assertEquals(List.of(), left.map(p -> p.getFileName().toString()).toList(), Files.readString(err));
        }
    }
}
