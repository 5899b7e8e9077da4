package dev.inmesh.runtime.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import org.junit.jupiter.api.Test;

class PeerMetadataTest {

    @Test
    void aHeaderValueDecodesToTheWorkloadItWasEncodedFrom() {
        WorkloadInfo w = new WorkloadInfo("reviews-v2", "bookinfo", "reviews", "v2", "reviews", "v2", "east");
        assertEquals(w, PeerMetadata.decode(PeerMetadata.encode(w, "east")));
    }

    @Test
    void theHeaderNamesThePodAsNameAndTheWorkloadAsWorkloadName() throws Exception {
        WorkloadInfo w = new WorkloadInfo("reviews-v2", "bookinfo", "reviews", "v2");
        var s = com.google.protobuf.Struct.parseFrom(java.util.Base64.getDecoder().decode(
                PeerMetadata.encode(w, "east", "reviews-v2-5d8f9c7b4-x2k4p")));
        assertEquals("reviews-v2-5d8f9c7b4-x2k4p", s.getFieldsOrThrow("NAME").getStringValue());
        assertEquals("reviews-v2", s.getFieldsOrThrow("WORKLOAD_NAME").getStringValue());
        var unnamed = com.google.protobuf.Struct.parseFrom(java.util.Base64.getDecoder().decode(
                PeerMetadata.encode(w, "east")));
        assertEquals("reviews-v2", unnamed.getFieldsOrThrow("NAME").getStringValue(), "no pod: the workload");
    }

    @Test
    void theSameHeaderValueIsDecodedOnceAndThenServedFromTheCache() {
        WorkloadInfo w = new WorkloadInfo("ratings-v1", "bookinfo", "ratings", "v1");
        // a fresh String each time, as each request's header is: the cache is by value, not by identity
        String header = PeerMetadata.encode(w, "Kubernetes");
        WorkloadInfo first = PeerMetadata.decode(new String(header));
        assertSame(first, PeerMetadata.decode(new String(header)), "no second protobuf parse for the same value");
    }

    @Test
    void theCacheStaysBoundedWhenEveryValueIsNew() {
        for (int i = 0; i < PeerMetadata.MAX_CACHED * 3; i++) {
            PeerMetadata.decode(PeerMetadata.encode(new WorkloadInfo("w" + i, "ns", "a", "v"), "c"));
        }
        org.junit.jupiter.api.Assertions.assertTrue(PeerMetadata.cachedCount() <= PeerMetadata.MAX_CACHED);
    }

    @Test
    void anOversizedValueIsDecodedButNotKeptInTheCache() {
        // a caller controls the header: 256 values of a large header each must not pin megabytes
        String name = "x".repeat(PeerMetadata.MAX_CACHED_CHARS);
        String header = PeerMetadata.encode(new WorkloadInfo(name, "ns", "a", "v"), "c");
        WorkloadInfo first = PeerMetadata.decode(header);
        org.junit.jupiter.api.Assertions.assertTrue(first.workload().equals(name), "decoded all the same");
        org.junit.jupiter.api.Assertions.assertTrue(first != PeerMetadata.decode(header), "parsed again: not kept");
    }

    @Test
    void anAbsentOrUnreadableValueIsUnknown() {
        assertSame(WorkloadInfo.UNKNOWN, PeerMetadata.decode(null));
        assertSame(WorkloadInfo.UNKNOWN, PeerMetadata.decode("%%%"));
    }
}
