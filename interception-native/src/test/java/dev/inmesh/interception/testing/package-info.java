/**
 * Test support for end-to-end interception tests: network namespaces and veth pairs that a test creates for itself
 * and removes afterwards, and that skip the test when the machine cannot provide them (not root, no {@code ip netns},
 * no iptables). samples/bookinfo's tests use it too, through this module's test-jar.
 */
package dev.inmesh.interception.testing;
