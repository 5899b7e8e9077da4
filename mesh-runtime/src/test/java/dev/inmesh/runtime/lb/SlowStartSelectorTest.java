package dev.inmesh.runtime.lb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** Envoy's slow start on ROUND_ROBIN and LEAST_REQUEST, on a clock moved by hand. */
class SlowStartSelectorTest {
    private static final LbConfig.SlowStart MINUTE = new LbConfig.SlowStart(Duration.ofSeconds(60), 1.0, 10.0);

    private final AtomicLong now = new AtomicLong(Duration.ofHours(1).toNanos());

    /** Four hosts that joined ten minutes ago and one that joins now, the last in the list. */
    private List<TestHost> fourOldOneNew() {
        List<TestHost> hosts = TestHost.hosts(5);
        for (TestHost h : hosts) {
            h.healthySince = now.get() - Duration.ofMinutes(10).toNanos();
        }
        hosts.get(4).healthySince = now.get();
        return hosts;
    }

    private LoadBalancer lb(LbPolicy policy, LbConfig.SlowStart slowStart) {
        LbConfig config = policy == LbPolicy.LEAST_REQUEST ? new LbConfig.LeastRequest(2, 1.0, slowStart)
                : new LbConfig.RoundRobin(slowStart);
        return LoadBalancer.of(policy, config, new Random(42), now::get);
    }

    private static int picksOf(HostSelector<TestHost> s, TestHost host, int picks) {
        Map<TestHost, Integer> counts = new HashMap<>();
        for (int i = 0; i < picks; i++) {
            counts.merge(s.pick(false, 0, 0), 1, Integer::sum);
        }
        return counts.getOrDefault(host, 0);
    }

    private void advance(Duration d) {
        now.addAndGet(d.toNanos());
    }

    @Test
    void theRampStartsAtTheMinimumWeightGrowsWithTimeOverTheWindowAndBendsWithAggression() {
        assertEquals(0.1, MINUTE.factor(0), 1e-9);
        assertEquals(0.1, MINUTE.factor(Duration.ofSeconds(6).toNanos()), 1e-9);
        assertEquals(0.5, MINUTE.factor(Duration.ofSeconds(30).toNanos()), 1e-9);
        assertEquals(1.0, MINUTE.factor(Duration.ofSeconds(60).toNanos()), 1e-9);
        var squareRoot = new LbConfig.SlowStart(Duration.ofSeconds(60), 2.0, 10.0);
        assertEquals(0.5, squareRoot.factor(Duration.ofSeconds(15).toNanos()), 1e-9);
        var noFloor = new LbConfig.SlowStart(Duration.ofSeconds(60), 1.0, 0.0);
        // Envoy counts at least one millisecond
        assertEquals(1.0 / 60_000, noFloor.factor(0), 1e-12);
        assertEquals(1.0 / 60, noFloor.factor(Duration.ofSeconds(1).toNanos()), 1e-12);
    }

    @Test
    void roundRobinSendsANewHostTheMinimumShareAtFirstMoreAsItAgesAndAnEqualShareAfterTheWindow() {
        List<TestHost> hosts = fourOldOneNew();
        TestHost young = hosts.get(4);
        HostSelector<TestHost> s = lb(LbPolicy.ROUND_ROBIN, MINUTE).newSelector(hosts, null);
        // weights 1, 1, 1, 1 and 0.1: the young host takes 0.1 / 4.1 of the picks
        assertEquals(100, picksOf(s, young, 4_100), 2);
        advance(Duration.ofSeconds(30));
        picksOf(s, young, 100); // each host is put back once with its weight of now
        assertEquals(500, picksOf(s, young, 4_500), 3); // 0.5 / 4.5
        advance(Duration.ofSeconds(45));
        assertEquals(1_000, picksOf(s, young, 5_000)); // out of the window: plain round robin
    }

    @Test
    void leastRequestRampsTheNewHostOnTopOfItsWeightOverActiveRequests() {
        List<TestHost> hosts = fourOldOneNew();
        TestHost young = hosts.get(4);
        HostSelector<TestHost> s = lb(LbPolicy.LEAST_REQUEST, MINUTE).newSelector(hosts, null);
        assertEquals(100, picksOf(s, young, 4_100), 2);
        advance(Duration.ofSeconds(30));
        for (int i = 0; i < 4; i++) {
            hosts.get(i).active = 1; // 1 / (1 + 1) each
        }
        picksOf(s, young, 100);
        assertEquals(1_000, picksOf(s, young, 5_000), 5); // 0.5 against 4 x 0.5
    }

    @Test
    void aHostThatIsNotHealthyIsNotRampedAsEnvoyRampsHealthyHostsOnly() {
        List<TestHost> hosts = fourOldOneNew();
        hosts.get(4).healthy = false; // a priority in panic picks among all its hosts
        HostSelector<TestHost> s = lb(LbPolicy.ROUND_ROBIN, MINUTE).newSelector(hosts, null);
        assertEquals(1_000, picksOf(s, hosts.get(4), 5_000));
    }

    @Test
    void hostsThatAreAllPastTheWindowGetThePolicysOrdinarySelectorWhoseCursorCarriesOver() {
        List<TestHost> hosts = fourOldOneNew();
        LoadBalancer lb = lb(LbPolicy.ROUND_ROBIN, MINUTE);
        HostSelector<TestHost> ramping = lb.newSelector(hosts, null);
        advance(Duration.ofSeconds(61));
        HostSelector<TestHost> ordinary = lb.newSelector(hosts, ramping);
        assertInstanceOf(RoundRobinLoadBalancer.Cursor.class, ordinary);
        TestHost last = ramping.pick(false, 0, 0); // past the window the ramping selector uses the same cursor
        assertEquals(hosts.get((hosts.indexOf(last) + 1) % 5), ordinary.pick(false, 0, 0));
        assertInstanceOf(LeastRequestLoadBalancer.Choices.class,
                lb(LbPolicy.LEAST_REQUEST, MINUTE).newSelector(hosts, null));
    }
}
