package dev.inmesh.runtime.lb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.Random;
import org.junit.jupiter.api.Test;

class RingHashLoadBalancerTest {

    @Test
    void theRingHasAtLeastTheMinimumSize() {
        var ring = new RingHashLoadBalancer.Ring<>(TestHost.hosts(3), 1024, 8_388_608, new Random(1));
        assertEquals(1026, ring.size()); // 1024 / 3 = 342 entries each, as Envoy's
    }

    /**
     * The ring is Envoy's, entry for entry, so that a key hashed by an Envoy sidecar and by Inmesh goes to the same
     * host: Envoy's construction written out plainly here (each host's entries "<address>_<i>" for i below its count,
     * sorted; a hash goes to the first entry at or after it, wrapping) picks what the ring picks, for ten and eleven
     * hosts. Inmesh rounded each host's count up to a power of two and sent part of the keys to other hosts.
     */
    @Test
    void aKeyGoesToTheHostEnvoysRingPicks() {
        Random r = new Random(11);
        for (int count : new int[] {3, 10, 11}) {
            var hosts = TestHost.hosts(count);
            var ring = new RingHashLoadBalancer.Ring<>(hosts, 1024, 8_388_608, new Random(1));
            long perHost = (long) Math.ceil(1024.0 / count);
            java.util.TreeMap<Long, String> envoy = new java.util.TreeMap<>(Long::compareUnsigned);
            for (TestHost h : hosts) {
                for (long i = 0; i < perHost; i++) {
                    envoy.put(Xxhash.hash64(h.addressString() + "_" + i), h.addressString());
                }
            }
            assertEquals(envoy.size(), ring.size(), count + " hosts");
            for (int k = 0; k < 20_000; k++) {
                long hash = r.nextLong();
                var at = envoy.ceilingEntry(hash);
                String expected = (at != null ? at : envoy.firstEntry()).getValue();
                assertEquals(expected, ring.pick(true, hash, 0).addressString(), count + " hosts, hash " + hash);
            }
        }
    }

    @Test
    void aMurmurHash2RingIsEnvoys() {
        // Envoy's ring_hash_lb_test BasicWithMurmur2: hosts 127.0.0.1:80 to :85, a minimum of 12 entries
        java.util.List<TestHost> hosts = new java.util.ArrayList<>();
        for (int port = 80; port <= 85; port++) {
            hosts.add(new TestHost("127.0.0.1:" + port, 1));
        }
        var policy = new RingHashLoadBalancer(new dev.inmesh.api.config.cluster.LbConfig.RingHash(12, 8_388_608,
                dev.inmesh.api.config.cluster.LbConfig.RingHash.HashFunction.MURMUR_HASH_2), new Random(1));
        HostSelector<TestHost> ring = policy.newSelector(hosts, null);
        assertSame(hosts.get(5), ring.pick(true, 0, 0));
        assertSame(hosts.get(5), ring.pick(true, -1, 0));
        assertSame(hosts.get(5), ring.pick(true, 1358027074129602068L, 0));
        assertSame(hosts.get(3), ring.pick(true, 1358027074129602069L, 0));
        assertSame(hosts.get(2), ring.pick(true, Long.parseUnsignedLong("10150910876324007730"), 0));
        assertSame(hosts.get(1), ring.pick(true, Long.parseUnsignedLong("9887544217113020895"), 0));
        assertSame(hosts.get(0), ring.pick(true, Long.parseUnsignedLong("17613279263364193813"), 0));
    }

    @Test
    void theRingStopsAtTheMaximumSize() {
        // the lightest host would need 3 001 entries for a whole one of its own; the maximum caps that at 2 048
        var ring = new RingHashLoadBalancer.Ring<>(TestHost.weighted(1, 3000), 2048, 2048, new Random(1));
        assertEquals(2048, ring.size());
    }

    @Test
    void aRequestGoesToTheFirstEntryAtOrAfterItsHash() {
        var ring = new RingHashLoadBalancer.Ring<>(TestHost.hosts(2), 4, 4, new Random(1));
        // the entry "<address>_0" of a host hashes to exactly this value, so the host owns it
        TestHost h = TestHost.hosts(2).get(1);
        long own = Xxhash.hash64(h.addressString() + "_0");
        assertEquals(h.addressString(), ring.pick(true, own, 0).addressString());
    }

    @Test
    void theIndexAndTheDirectTableFindTheSameEntryAsASearchOfTheWholeRing() {
        Random r = new Random(7);
        for (int hosts : new int[] {1, 2, 3, 10, 1000, 10_000}) {
            var ring = new RingHashLoadBalancer.Ring<>(TestHost.hosts(hosts), 1024, 8_388_608, new Random(1));
            for (int k = 0; k < 50_000; k++) {
                long hash = r.nextLong();
                assertEquals(ring.entryBySearch(hash), ring.entry(hash), "hash " + hash + " with " + hosts + " hosts");
                assertSame(ring.hostBySearch(hash), ring.pick(true, hash, 0), "hash " + hash + " with " + hosts);
            }
            // the extremes of the hash space, and every entry's own hash and its neighbours
            for (long hash : new long[] {0, -1, Long.MIN_VALUE, Long.MAX_VALUE}) {
                assertEquals(ring.entryBySearch(hash), ring.entry(hash));
                assertSame(ring.hostBySearch(hash), ring.pick(true, hash, 0));
            }
            for (TestHost h : TestHost.hosts(Math.min(hosts, 50))) {
                long own = Xxhash.hash64(h.addressString() + "_0");
                for (long hash : new long[] {own - 1, own, own + 1}) {
                    assertEquals(ring.entryBySearch(hash), ring.entry(hash));
                    assertSame(ring.hostBySearch(hash), ring.pick(true, hash, 0));
                }
            }
        }
    }

    @Test
    void aHostOfTheSmallestShareGetsOneEntryWhenThatReachesTheMinimum() {
        // 10 000 hosts of equal weight: 1 024 / 10 000 rounds up to one entry each, and one stays one
        var ring = new RingHashLoadBalancer.Ring<>(TestHost.hosts(10_000), 1024, 8_388_608, new Random(1));
        assertEquals(10_000, ring.size());
    }
}
