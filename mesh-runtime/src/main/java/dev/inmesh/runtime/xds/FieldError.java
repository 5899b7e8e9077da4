package dev.inmesh.runtime.xds;

/**
 * A problem with one field of a resource, with the field's path inside the resource (such as
 * {@code virtual_hosts[0].routes[2].match.safe_regex.regex}). Parsers throw it; {@link Fields#at} prefixes the path
 * as the error travels up; {@link InvalidResourceException} adds the resource's name.
 */
public final class FieldError extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final String field;
    private final String detail;

    public FieldError(String field, String detail) {
        super(field.isEmpty() ? detail : field + ": " + detail);
        this.field = field;
        this.detail = detail;
    }

    /** The path of the field in its resource, or empty for the resource as a whole. */
    public String field() {
        return field;
    }

    /** What is wrong, without the path. */
    public String detail() {
        return detail;
    }

    /** The same error, one level further down: {@code segment.field}. */
    public FieldError under(String segment) {
        if (segment.isEmpty()) {
            return this;
        }
        String path = field.isEmpty() ? segment : field.startsWith("[") ? segment + field : segment + "." + field;
        return new FieldError(path, detail);
    }

    /**
     * Converts a record's check message ({@code field: value (expected: ...)}) into a field error.
     */
    public static FieldError of(IllegalArgumentException e) {
        if (e instanceof FieldError fe) {
            return fe;
        }
        String m = String.valueOf(e.getMessage());
        int colon = m.indexOf(": ");
        if (colon > 0 && m.substring(0, colon).matches("[A-Za-z0-9_.\\[\\]]+")) {
            return new FieldError(m.substring(0, colon), m.substring(colon + 2));
        }
        return new FieldError("", m);
    }
}
