package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;

/** Answer directly with a status and an optional body ({@code route.v3.DirectResponseAction}). */
public record DirectResponseAction(int status, String body) implements Action {
    public DirectResponseAction {
        Checks.check(status >= 200 && status <= 599, "direct_response.status", status, "200..599");
        body = body == null ? "" : body;
    }
}
