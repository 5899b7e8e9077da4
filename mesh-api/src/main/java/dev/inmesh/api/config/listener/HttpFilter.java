package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;

/**
 * One HTTP filter of a connection manager, by name and config type. Inmesh runs the router itself; other filters
 * are accepted only where they change nothing that Inmesh does not do (the parser decides and says so).
 */
public record HttpFilter(String name, String typeUrl) {
    public HttpFilter {
        Checks.nonEmpty(name, "http_filters.name");
        typeUrl = typeUrl == null ? "" : typeUrl;
    }
}
