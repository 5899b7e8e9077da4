/**
 * Route tables (RDS): {@link dev.inmesh.api.config.route.RouteConfiguration}, its virtual hosts, routes, matches
 * and actions, and the retry policy.
 */
package dev.inmesh.api.config.route;
