package dev.inmesh.api.config.route;

/** What a route does once it matches: forward ({@link RouteAction}), redirect, or answer directly. */
public sealed interface Action permits RouteAction, RedirectAction, DirectResponseAction {}
