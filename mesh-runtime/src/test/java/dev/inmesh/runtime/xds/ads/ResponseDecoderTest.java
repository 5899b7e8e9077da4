package dev.inmesh.runtime.xds.ads;

import static dev.inmesh.runtime.xds.ads.XdsFixtures.route;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.Duration;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Decoding one response's resources, bare or in Envoy's {@code Resource} wrapper. */
class ResponseDecoderTest {
    static final ResourceBundle.Version VERSION = new ResourceBundle.Version("7", Instant.EPOCH);

    static ResponseDecoder.Decoded decode(Any... resources) {
        return decodeAsking(name -> true, resources);
    }

    /** Decodes a route configuration response asking only for the names {@code asked} takes. */
    static ResponseDecoder.Decoded decodeAsking(java.util.function.Predicate<String> asked, Any... resources) {
        return ResponseDecoder.decode(ResourceType.ROUTE, response(resources), VERSION, Map.of(), false, asked);
    }

    static Resource.Builder wrapped(String name, String cluster) {
        return Resource.newBuilder().setName(name).setResource(Any.pack(route(name, cluster)));
    }

    @Test
    void aResourceInEnvoysResourceWrapperIsDecodedAsIfSentBareUnderTheWrappersName() {
        ResponseDecoder.Decoded d = decode(Any.pack(route("9080", "c1")),
                Any.pack(wrapped("9090", "c2").setVersion("ignored, as Envoy takes the response's")
                        .addAliases("alias").setMetadata(Metadata.getDefaultInstance()).build()));
        assertEquals(Map.of(), d.errors());
        assertFalse(d.undecodable());
        assertEquals(List.of("9080", "9090"), List.copyOf(d.valid().keySet()));
        SubscriptionState.Entry e = d.valid().get("9090");
        assertEquals(route("9090", "c2"), e.message());
        assertEquals("7", e.version().versionInfo());
    }

    /**
     * A resource the same as the one held under its name passed the proto constraints when it was taken: it is reused
     * without being checked again (here a held message that would fail them stands for that); a changed one is
     * checked.
     */
    @Test
    void aResourceTheSameAsTheOneHeldIsReusedWithoutCheckingItsConstraintsAgain() {
        // a virtual host with no domains fails VirtualHost.domains' min_items: 1
        io.envoyproxy.envoy.config.route.v3.RouteConfiguration held = io.envoyproxy.envoy.config.route.v3
                .RouteConfiguration.newBuilder().setName("9080").addVirtualHosts(
                        io.envoyproxy.envoy.config.route.v3.VirtualHost.newBuilder().setName("vh")).build();
        SubscriptionState.Entry entry = new SubscriptionState.Entry("parsed", held, VERSION);
        ResponseDecoder.Decoded d = ResponseDecoder.decode(ResourceType.ROUTE, response(Any.pack(held)), VERSION,
                Map.of("9080", entry), false, name -> true);
        assertEquals(Map.of(), d.errors());
        assertTrue(d.valid().get("9080") == entry, "the entry held, as it is");

        var changed = held.toBuilder().setValidateClusters(com.google.protobuf.BoolValue.of(true)).build();
        d = ResponseDecoder.decode(ResourceType.ROUTE, response(Any.pack(changed)), VERSION, Map.of("9080", entry),
                false, name -> true);
        assertEquals(Map.of(), d.valid());
        assertTrue(d.errors().get("9080").contains("domains"), d.errors().toString());
    }

    private static DiscoveryResponse response(Any... resources) {
        return DiscoveryResponse.newBuilder().setTypeUrl(ResourceType.ROUTE.typeUrl()).setVersionInfo("7")
                .setNonce("n").addAllResources(List.of(resources)).build();
    }

    @Test
    void aWrappedResourceWithATtlIsRefusedByNameWhileTheRestOfTheResponseDecodes() {
        ResponseDecoder.Decoded d = decode(Any.pack(route("9080", "c1")),
                Any.pack(wrapped("9090", "c2").setTtl(Duration.newBuilder().setSeconds(30)).build()));
        assertFalse(d.undecodable());
        assertEquals(List.of("9080"), List.copyOf(d.valid().keySet()));
        String error = d.errors().get("9090");
        assertTrue(error.startsWith("RouteConfiguration \"9090\": resources[1].ttl: not supported"), error);
    }

    @Test
    void aHeartbeatWithNoResourceIsRefusedByName() {
        ResponseDecoder.Decoded d = decode(Any.pack(Resource.newBuilder().setName("9090")
                .setTtl(Duration.newBuilder().setSeconds(30)).build()),
                Any.pack(Resource.newBuilder().setName("9091").build()));
        assertFalse(d.undecodable());
        assertTrue(d.errors().get("9090").contains("resources[0].ttl"), d.errors().toString());
        assertTrue(d.errors().get("9091").contains("resources[1].resource: missing"), d.errors().toString());
    }

    @Test
    void aWrapperNamingAnotherResourceThanTheOneItWrapsIsRefusedByItsName() {
        ResponseDecoder.Decoded d = decode(Any.pack(Resource.newBuilder().setName("9090")
                .setResource(Any.pack(route("9091", "c2"))).build()));
        assertEquals(Map.of(), d.valid());
        assertTrue(d.errors().get("9090").contains("resources[0].name: \"9090\" (expected: the name of the resource"
                + " it wraps, \"9091\")"), d.errors().toString());
    }

    @Test
    void aWrappedResourceOfAnotherTypeStillRejectsTheWholeResponse() {
        ResponseDecoder.Decoded d = decode(Any.pack(Resource.newBuilder().setName("x")
                .setResource(Any.pack(Metadata.getDefaultInstance())).build()));
        assertTrue(d.undecodable());
        assertTrue(d.errors().get("resources[0].resource").contains("type_url"), d.errors().toString());
    }

    @Test
    void aResourceNotAskedForIsLeftOutUnparsedBareOrWrappedBadOrNotButOneThatCannotBeDecodedStillRejectsAll() {
        ResponseDecoder.Decoded d = decodeAsking("9080"::equals, Any.pack(route("9080", "c1")),
                Any.pack(XdsFixtures.badRoute("bare")),
                Any.pack(Resource.newBuilder().setName("wrapped").setTtl(Duration.newBuilder().setSeconds(30))
                        .setResource(Any.pack(XdsFixtures.badRoute("wrapped"))).build()));
        assertEquals(List.of("9080"), List.copyOf(d.valid().keySet()));
        assertEquals(Map.of(), d.errors());
        assertEquals(Map.of(), d.rejected());
        assertFalse(d.undecodable());

        d = decodeAsking("9080"::equals, Any.pack(route("9080", "c1")),
                Any.pack(Metadata.getDefaultInstance()));
        assertTrue(d.undecodable(), "its name cannot be known: " + d.errors());
    }

    /** A route configuration whose only virtual host has no domain: Envoy's API wants one at least. */
    static io.envoyproxy.envoy.config.route.v3.RouteConfiguration noDomain(String name) {
        return route(name, "c1").toBuilder().setVirtualHosts(0, route(name, "c1").getVirtualHosts(0).toBuilder()
                .clearDomains()).build();
    }

    @Test
    void aResourceFailingEnvoysProtoConstraintsRejectsTheWholeResponseBeforeAnyIsParsed() {
        // 9070 does not parse (an invalid regex), 9090 is good: neither is parsed, both rejected with the response
        ResponseDecoder.Decoded d = decode(Any.pack(XdsFixtures.badRoute("9070")), Any.pack(route("9090", "c2")),
                Any.pack(noDomain("9080")));
        assertTrue(d.undecodable());
        assertEquals(Map.of(), d.valid());
        assertEquals(Map.of("9080", "RouteConfiguration \"9080\": virtual_hosts[0].domains: 0 items (expected: at "
                + "least 1 item)"), d.errors());
    }

    @Test
    void overStateOfTheWorldAResourceNotAskedForIsCheckedWrappedOrNot() {
        // as Envoy's state of the world mux, which decodes (so checks) every resource of a response, wrapped or bare
        ResponseDecoder.Decoded d = decodeAsking("9090"::equals, Any.pack(route("9090", "c2")),
                Any.pack(Resource.newBuilder().setName("9080").setResource(Any.pack(noDomain("9080"))).build()));
        assertTrue(d.undecodable(), d.toString());
        assertEquals(Map.of(), d.valid());
    }

    @Test
    void overDeltaOnlyTheResourcesAWatchAsksForAreChecked() {
        DiscoveryResponse r = DiscoveryResponse.newBuilder().setTypeUrl(ResourceType.ROUTE.typeUrl())
                .setVersionInfo("7").setNonce("n").addResources(Any.pack(wrapped("9090", "c2").build()))
                .addResources(Any.pack(Resource.newBuilder().setName("9080").setResource(Any.pack(noDomain("9080")))
                        .build())).build();
        // as Envoy's delta watch map, which decodes only what a watch asks for
        ResponseDecoder.Decoded d = ResponseDecoder.decode(ResourceType.ROUTE, r, VERSION, Map.of(), true,
                "9090"::equals);
        assertFalse(d.undecodable());
        assertTrue(d.valid().containsKey("9090"), d.toString());
        assertTrue(ResponseDecoder.decode(ResourceType.ROUTE, r, VERSION, Map.of(), true, name -> true)
                .undecodable());
    }
}
