/**
 * Test fixtures that the other modules' tests share with this one's, through the test-jar this module publishes
 * (interception-native and samples/bookinfo depend on it at test scope): what every module's set-up needs alike, so
 * that no module keeps its own copy.
 */
package dev.inmesh.runtime.testing;
