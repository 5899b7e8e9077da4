package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * The request and response header additions and removals that a route configuration, a virtual host, a route or a
 * weighted cluster may carry ({@code request_headers_to_add}, {@code request_headers_to_remove}, ...).
 */
public record HeaderMutations(
        List<HeaderValueOption> requestHeadersToAdd,
        List<String> requestHeadersToRemove,
        List<HeaderValueOption> responseHeadersToAdd,
        List<String> responseHeadersToRemove) {
    public static final HeaderMutations NONE = new HeaderMutations(List.of(), List.of(), List.of(), List.of());

    public HeaderMutations {
        requestHeadersToAdd = Checks.list(requestHeadersToAdd, "request_headers_to_add");
        requestHeadersToRemove = Checks.list(requestHeadersToRemove, "request_headers_to_remove");
        responseHeadersToAdd = Checks.list(responseHeadersToAdd, "response_headers_to_add");
        responseHeadersToRemove = Checks.list(responseHeadersToRemove, "response_headers_to_remove");
    }

    public boolean isEmpty() {
        return requestHeadersToAdd.isEmpty() && requestHeadersToRemove.isEmpty()
                && responseHeadersToAdd.isEmpty() && responseHeadersToRemove.isEmpty();
    }
}
