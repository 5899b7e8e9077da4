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
     * loopback. With {@code dualStack} (istio-iptables' --dual-stack) istio-iptables looks on past the IPv4
     * addresses for an IPv6 one, so any global IPv6 address makes it IPv6.
     */
    static boolean hostIsIpv6(boolean dualStack) {
        List<InetAddress> addresses = new ArrayList<>();
        try {
            for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
                addresses.addAll(Collections.list(nic.getInetAddresses()));
            }
        } catch (SocketException e) {
            return false;
        }
        return isIpv6(addresses, dualStack);
    }

    /** {@link #hostIsIpv6} over a given list of the host's addresses. */
    static boolean isIpv6(List<InetAddress> addresses, boolean dualStack) {
        boolean sawV4 = false;
        boolean sawV6 = false;
        for (InetAddress a : addresses) {
            if (a.isLoopbackAddress() || a.isLinkLocalAddress() || a.isMulticastAddress()) {
                continue;
            }
            sawV4 |= a instanceof Inet4Address;
            sawV6 |= a instanceof Inet6Address;
        }
        return sawV6 && (dualStack || !sawV4);
    }

    /** The UID of a user from /etc/passwd, or null when there is no such user. */
    static String uidOf(String user) {
        return idOf(Path.of("/etc/passwd"), user);
    }

    /** The GID of a group from /etc/group, or null when there is no such group. */
    static String gidOf(String group) {
        return idOf(Path.of("/etc/group"), group);
    }

    /** The third field of the line whose first field is {@code name}, in a passwd or group file. */
    static String idOf(Path file, String name) {
        try {
            for (String line : Files.readAllLines(file)) {
                String[] fields = line.split(":");
                if (fields.length > 2 && fields[0].equals(name)) {
                    return fields[2];
                }
            }
        } catch (IOException e) {
            return null;
        }
        return null;
    }
}
