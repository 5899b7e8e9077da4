package dev.inmesh.api.config.route;

import dev.inmesh.api.config.listener.Buffer;

/**
 * The buffer filter's override ({@code typed_per_filter_config} {@code BufferPerRoute}): the most specific one (the
 * route's, else its virtual host's, else its route configuration's) turns the filter off for the request or replaces
 * its {@code Buffer}.
 *
 * @param buffer {@code buffer}, the settings in place of the filter's own; null for {@code disabled: true}
 */
public record BufferPerRoute(Buffer buffer) implements FilterPerRoute {
    /** {@code disabled: true}: the filter holds nothing for these routes. */
    public static final BufferPerRoute DISABLED = new BufferPerRoute(null);

    /** Whether it turns the filter off. */
    public boolean disabled() {
        return buffer == null;
    }
}
