package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;

/**
 * One header to add, as Envoy's {@code HeaderValueOption}, with its append action.
 *
 * @param key the header's name
 * @param value the value: a literal, or, when {@code formatted}, Envoy's substitution format string as configured
 *     ({@code %DOWNSTREAM_REMOTE_ADDRESS%}, {@code %REQ(x-foo)%}, {@code %%} for a {@code %}), compiled with the
 *     snapshot and formatted per request where Envoy formats it
 * @param appendAction what to do when the header is already present
 * @param keepEmptyValue whether a value that is (or formats to) empty is added all the same
 * @param formatted whether {@code value} is a substitution format string with a command operator (the xDS parsers
 *     say so of a configured value that has one; one without is read as the literal it stands for)
 */
public record HeaderValueOption(String key, String value, AppendAction appendAction, boolean keepEmptyValue,
                                boolean formatted) {
    public HeaderValueOption {
        Checks.headerText(Checks.nonEmpty(key, "header.key"), "header.key");
        Checks.headerText(value, "header.value");
        Checks.nonNull(appendAction, "append_action");
    }

    /** A header whose value is a literal. */
    public HeaderValueOption(String key, String value, AppendAction appendAction, boolean keepEmptyValue) {
        this(key, value, appendAction, keepEmptyValue, false);
    }

    /** What to do when the header is already present. */
    public enum AppendAction {
        APPEND_IF_EXISTS_OR_ADD,
        ADD_IF_ABSENT,
        OVERWRITE_IF_EXISTS_OR_ADD,
        OVERWRITE_IF_EXISTS
    }
}
