package dev.inmesh.interception;

import dev.inmesh.interception.rules.Cidr;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** What istio-iptables reads from the host when no flag says otherwise. */
final class HostFacts {
    private HostFacts() {}

    /** The {@code nameserver} entries of a resolv.conf file, split into IPv4 and IPv6. */
    record NameServers(List<String> v4, List<String> v6) {}

    static NameServers nameServers(Path resolvConf) throws IOException {
        List<String> v4 = new ArrayList<>();
        List<String> v6 = new ArrayList<>();
        for (String line : Files.readAllLines(resolvConf)) {
            String[] words = line.strip().split("\\s+");
            if (words.length < 2 || !words[0].equals("nameserver")) {
                continue;
            }
            String server = words[1];
            if (Cidr.isIpv4Literal(server)) {
                v4.add(server);
            } else if (Cidr.isIpv6Literal(server)) {
                v6.add(server);
            }
        }
        return new NameServers(v4, v6);
    }

    /**
     * Whether the host is IPv6. istio-iptables goes by the family of the host's first address that is neither
     * loopback nor link-local, which on a dual-stack host is normally its IPv4 address. Java does not promise
     * that order, so this reads it as: IPv6 when the host has a global IPv6 address and no IPv4 address besides
     * loopback.
     */
    static boolean hostIsIpv6() {
        boolean sawV6 = false;
        try {
            for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
                for (InetAddress a : Collections.list(nic.getInetAddresses())) {
                    if (a.isLoopbackAddress() || a.isLinkLocalAddress() || a.isMulticastAddress()) {
                        continue;
                    }
                    if (a instanceof Inet4Address) {
                        return false;
                    }
                    if (a instanceof Inet6Address) {
                        sawV6 = true;
                    }
                }
            }
        } catch (SocketException e) {
            return false;
        }
        return sawV6;
    }

    /** The UID of a user from /etc/passwd, or null when there is no such user. */
    static String uidOf(String user) {
        try {
            for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
                String[] fields = line.split(":");
                if (fields.length > 2 && fields[0].equals(user)) {
                    return fields[2];
                }
            }
        } catch (IOException e) {
            return null;
        }
        return null;
    }
}
