/**
 * The {@code --run-validation} probe: proves that the installed rules really capture traffic. Like istio-iptables it
 * listens on the capture ports, connects to a probe address that nothing serves, acting as the proxy's user, and
 * passes only when one of its listeners accepts that connection and reads the probe port back as the connection's
 * original destination (SO_ORIGINAL_DST, read by {@code origdst}). Sockets are libc sockets through JNA, so the original destination can be
 * read from the accepted descriptor; the probe runs on threads of its own that may enter a network namespace.
 */
package dev.inmesh.interception.validation;
