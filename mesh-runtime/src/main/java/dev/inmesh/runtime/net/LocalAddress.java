package dev.inmesh.runtime.net;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.Enumeration;

/**
 * This host's address as Envoy's local info holds it ({@code Network::Utility::getLocalAddress} for IPv4, its default
 * {@code --local-address-ip-version}): the first IPv4 address of an interface that is up and not a loopback one, else
 * 127.0.0.1. A connection manager with {@code use_remote_address: true} appends it to {@code x-forwarded-for} in place
 * of a loopback peer. Found once, the first time it is asked.
 */
public final class LocalAddress {
    private LocalAddress() {}

    /** The address, as {@link IpLiterals#format} prints it. */
    public static String get() {
        return Holder.ADDRESS;
    }

    private static final class Holder {
        static final String ADDRESS = find();
    }

    private static String find() {
        try {
            Enumeration<NetworkInterface> all = NetworkInterface.getNetworkInterfaces();
            while (all != null && all.hasMoreElements()) {
                NetworkInterface i = all.nextElement();
                if (!i.isUp() || i.isLoopback()) {
                    continue;
                }
                for (Enumeration<InetAddress> a = i.getInetAddresses(); a.hasMoreElements(); ) {
                    InetAddress address = a.nextElement();
                    if (address instanceof Inet4Address && !address.isLoopbackAddress()) {
                        return IpLiterals.format(address.getAddress());
                    }
                }
            }
        } catch (SocketException e) {
            // as Envoy without an address of that version: the loopback one
        }
        return "127.0.0.1";
    }
}
