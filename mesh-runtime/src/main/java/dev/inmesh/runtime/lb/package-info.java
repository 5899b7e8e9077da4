/**
 * Load balancing policies, each a stateless {@link dev.inmesh.runtime.lb.LoadBalancer} factory
 * ({@link dev.inmesh.runtime.lb.LoadBalancer#of}) that builds a stateful {@link dev.inmesh.runtime.lb.HostSelector}
 * for one list of {@link dev.inmesh.runtime.lb.LbHost}s: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH and MAGLEV with
 * Envoy's semantics, the {@link dev.inmesh.runtime.lb.EdfScheduler} they share with locality picks,
 * {@link dev.inmesh.runtime.lb.Xxhash} and {@link dev.inmesh.runtime.lb.HashPolicies}, which the router uses to turn a
 * route's hash policies into a request hash. Priorities, localities and health are the upstream package's concern:
 * a selector only sees the hosts it may pick.
 */
package dev.inmesh.runtime.lb;
