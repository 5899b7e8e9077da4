package dev.inmesh.runtime.xds;

/**
 * A resource rejected by name: its type, its name, the field at fault and what is wrong. The message reads
 * {@code RouteConfiguration "9080": virtual_hosts[0].routes[1].match.safe_regex.regex: "a(" (invalid RE2 ...)}.
 */
public final class InvalidResourceException extends Exception {
    private static final long serialVersionUID = 1L;

    private final ResourceType type;
    private final String resourceName;
    private final String field;
    private final String detail;

    public InvalidResourceException(ResourceType type, String resourceName, String field, String detail) {
        super(type.about(resourceName) + (field.isEmpty() ? "" : field + ": ") + detail);
        this.type = type;
        this.resourceName = resourceName;
        this.field = field;
        this.detail = detail;
    }

    public static InvalidResourceException of(ResourceType type, String resourceName, FieldError e) {
        return new InvalidResourceException(type, resourceName, e.field(), e.detail());
    }

    public ResourceType type() {
        return type;
    }

    public String resourceName() {
        return resourceName;
    }

    public String field() {
        return field;
    }

    public String detail() {
        return detail;
    }
}
