/**
 * The DNS proxy of {@code inmesh proxy --dns-capture}, as Istio's agent runs one with
 * {@code ISTIO_META_DNS_CAPTURE=true}: {@link dev.inmesh.interception.dns.DnsTable} is the table of names answered
 * locally, compiled from istiod's name table ({@link dev.inmesh.interception.dns.NameTable}, NDS, when the control
 * plane sends one) or else from the configuration the proxy runs (the virtual hosts' names and their IP-literal
 * domains), and {@link dev.inmesh.interception.dns.DnsProxy} listens where {@code inmesh iptables --redirect-dns}
 * sends the application's queries (15053, UDP and TCP), answers the mesh's names from the table and forwards the
 * others to the upstream resolvers.
 */
package dev.inmesh.interception.dns;
