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
        modifiable(requestHeadersToAdd.stream().map(HeaderValueOption::key).toList(), "request_headers_to_add",
                ".header.key");
        modifiable(requestHeadersToRemove, "request_headers_to_remove", "");
        modifiable(responseHeadersToAdd.stream().map(HeaderValueOption::key).toList(), "response_headers_to_add",
                ".header.key");
        modifiable(responseHeadersToRemove, "response_headers_to_remove", "");
    }

    /**
     * As Envoy: a pseudo-header ({@code :path}, {@code :authority}, ...) or {@code host} may be neither added nor
     * removed by these rules (the route action's rewrites change the path and the Host).
     */
    private static void modifiable(List<String> names, String field, String suffix) {
        for (int i = 0; i < names.size(); i++) {
            String name = names.get(i);
            Checks.headerText(Checks.nonEmpty(name, field + "[" + i + "]" + suffix), field + "[" + i + "]" + suffix);
            Checks.check(!name.startsWith(":") && !name.equalsIgnoreCase("host"), field + "[" + i + "]" + suffix,
                    "\"" + name + "\"", "a header other than host and the :-prefixed pseudo-headers, which Envoy "
                            + "does not let header rules add or remove");
        }
    }

    public boolean isEmpty() {
        return requestHeadersToAdd.isEmpty() && requestHeadersToRemove.isEmpty()
                && responseHeadersToAdd.isEmpty() && responseHeadersToRemove.isEmpty();
    }
}
