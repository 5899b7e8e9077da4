/**
 * Routing: compiled route tables ({@link dev.inmesh.runtime.router.RouteTable}) that pick a virtual host by the Host
 * header and the first matching route, exactly as Envoy does, and the decisions they produce. Matchers are compiled
 * once per configuration; selecting a route allocates little and never locks.
 */
package dev.inmesh.runtime.router;
