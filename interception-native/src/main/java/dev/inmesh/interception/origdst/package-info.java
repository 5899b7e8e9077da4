/**
 * Where a captured connection was going. In REDIRECT mode the kernel rewrote the destination, and the original one is
 * read back from conntrack with {@code getsockopt(SO_ORIGINAL_DST)} (IPv4) or {@code IP6T_SO_ORIGINAL_DST} (IPv6) on
 * the accepted descriptor, through JNA. In TPROXY mode nothing was rewritten: the accepted socket's local address is
 * the original destination (the socket has {@code IP_TRANSPARENT}).
 * {@link dev.inmesh.interception.origdst.OriginalDestination} does both, in that order, as Envoy's original_dst
 * listener filter does; a connection that was neither redirected nor accepted transparently has no original
 * destination.
 */
package dev.inmesh.interception.origdst;
