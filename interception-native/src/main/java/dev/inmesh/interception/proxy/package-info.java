/**
 * The standalone proxy ({@code inmesh proxy}): runs an Envoy configuration's listeners for unmodified applications
 * whose traffic iptables sends to it. {@link dev.inmesh.interception.proxy.StandaloneProxy} starts it;
 * {@link dev.inmesh.interception.proxy.ProxyServer} binds the listeners as Netty server channels on Vert.x's event
 * loops (native epoll, so the accepted descriptor is at hand for SO_ORIGINAL_DST, and listeners can be
 * IP_TRANSPARENT for TPROXY); {@code ConnectionHandler} hands each connection to the listener of its original
 * destination, inspects the first bytes (TLS ClientHello, HTTP/1, h2c preface), picks the filter chain as Envoy does
 * and makes it a byte relay ({@code TcpRelay}, half-close and back-pressure) or an HTTP connection bridged to the
 * shared router ({@code HttpBridge}), on the connection's own event loop. {@link
 * dev.inmesh.interception.proxy.PrivilegeDrop} becomes the proxy's user after binding; {@link
 * dev.inmesh.interception.proxy.AdminHook} is where the admin server plugs in.
 */
package dev.inmesh.interception.proxy;
