package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.inmesh.api.config.extauthz.ExtAuthz;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The peers of the check request a gRPC authorizer gets, as Envoy's {@code check_request_utils} fills them: each
 * side's certificate identity as its {@code principal} (first URI SAN, else DNS SAN, else subject), the source's
 * {@code service} from the request's {@code x-envoy-downstream-service-cluster}, and for a connection (the network
 * filter) the destination's {@code service} from the SNI.
 */
class ExtAuthzCheckRequestTest {
    private static final ExtAuthzFilter GRPC = ExtAuthzFilter.compile(new ExtAuthz(
            new ExtAuthz.GrpcService("outbound|9000||authz.local", "", Duration.ofSeconds(1)), List.of(), false,
            ExtAuthz.DEFAULT_STATUS_ON_ERROR, null, false));
    private static final RbacFilter.PeerIdentity CLIENT = new RbacFilter.PeerIdentity(
            List.of("spiffe://cluster.local/ns/default/sa/productpage"), List.of(), "CN=productpage");
    private static final RbacFilter.PeerIdentity OWN_DNS = new RbacFilter.PeerIdentity(List.of(),
            List.of("reviews.default.svc"), "CN=reviews");

    @Test
    void aRequestsCheckNamesBothCertificatesIdentitiesAndTheDownstreamServiceCluster() {
        Routes.Req r = Routes.req("reviews:9080", "/reviews/1").with("x-envoy-downstream-service-cluster",
                "productpage");
        RbacFilter.Subject s = new RbacFilter.Subject(r, "10.1.0.9", 9080, "10.1.0.7", 41000,
                "outbound_.9080_._.reviews.default.svc.cluster.local", () -> CLIENT).withLocal(() -> OWN_DNS);

        AttributeContext a = GRPC.checkRequest(s, r.headers).getAttributes();

        assertEquals("spiffe://cluster.local/ns/default/sa/productpage", a.getSource().getPrincipal());
        assertEquals("productpage", a.getSource().getService(), "x-envoy-downstream-service-cluster");
        assertEquals("reviews.default.svc", a.getDestination().getPrincipal(), "no URI SAN: the first DNS SAN");
        assertEquals("", a.getDestination().getService(), "a request's destination has no service");
        assertEquals(9080, a.getDestination().getAddress().getSocketAddress().getPortValue());
    }

    @Test
    void aConnectionsCheckNamesTheSniAsTheDestinationsServiceAndASubjectOnlyCertificateByItsSubject() {
        RbacFilter.Subject s = RbacFilter.Subject.connection("10.1.0.9", 9000, "10.1.0.7", 41000, "db.example.com",
                () -> CLIENT).withLocal(() -> new RbacFilter.PeerIdentity(List.of(), List.of(), "CN=db,O=example"));

        AttributeContext a = GRPC.checkRequest(s, null).getAttributes();

        assertEquals("db.example.com", a.getDestination().getService(), "the SNI, as Envoy's network filter");
        assertEquals("CN=db,O=example", a.getDestination().getPrincipal(), "no SAN: the subject");
        assertEquals("spiffe://cluster.local/ns/default/sa/productpage", a.getSource().getPrincipal());
        assertEquals("", a.getSource().getService());
        assertFalse(a.hasRequest(), "a connection has no request");
    }

    /**
     * A body held under {@code with_request_body} is sent as Envoy's {@code check_request_utils} sends it: its first
     * {@code max_request_bytes} as text, each byte of an invalid UTF-8 sequence (a character cut at the limit too)
     * written {@code !}; {@code size} the bytes that came; {@code x-envoy-auth-partial-body} whatever
     * {@code allowed_headers} names.
     */
    @Test
    void aHeldBodyIsSentAsSanitizedTextCutAtMaxRequestBytesWithItsSizeAndPartialMark() {
        ExtAuthzFilter f = ExtAuthzFilter.compile(new ExtAuthz(new ExtAuthz.GrpcService("outbound|9000||authz.local",
                "", Duration.ofSeconds(1)), List.of(new dev.inmesh.api.config.core.StringMatcher.Exact("x-a", false)),
                false, ExtAuthz.DEFAULT_STATUS_ON_ERROR, null, false, new ExtAuthz.BufferSettings(6, true, false)));
        Routes.Req r = Routes.req("reviews:9080", "/reviews/1");
        RbacFilter.Subject s = new RbacFilter.Subject(r, "10.1.0.9", 9080, "10.1.0.7", 41000, null, () -> null);
        // "a", an invalid 0xff, "b", "c", then the first two of the three bytes of U+20AC, cut at 6; then more
        io.vertx.core.buffer.Buffer body = io.vertx.core.buffer.Buffer.buffer(new byte[] {'a', (byte) 0xff, 'b', 'c',
            (byte) 0xe2, (byte) 0x82, (byte) 0xac, 'd'});

        AttributeContext.HttpRequest h = f.checkRequest(s, r.headers, body).getAttributes().getRequest().getHttp();

        assertEquals("a!bc!!", h.getBody());
        assertEquals(8, h.getSize());
        assertEquals("true", h.getHeadersMap().get("x-envoy-auth-partial-body"));
        assertEquals("a\u20acb", ExtAuthzFilter.utf8Text("a\u20acb".getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }

    @Test
    void withoutTlsNeitherSideHasAPrincipal() {
        Routes.Req r = Routes.req("reviews:9080", "/reviews/1");
        RbacFilter.Subject s = new RbacFilter.Subject(r, "10.1.0.9", 9080, "10.1.0.7", 41000, null, () -> null)
                .withLocal(() -> null);

        AttributeContext a = GRPC.checkRequest(s, r.headers).getAttributes();

        assertEquals("", a.getSource().getPrincipal());
        assertEquals("", a.getDestination().getPrincipal());
        assertEquals("", a.getSource().getService());
    }
}
