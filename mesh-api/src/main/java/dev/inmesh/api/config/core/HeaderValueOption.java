package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;

/** One header to add, as Envoy's {@code HeaderValueOption}, with its append action. */
public record HeaderValueOption(String key, String value, AppendAction appendAction, boolean keepEmptyValue) {
    public HeaderValueOption {
        Checks.headerText(Checks.nonEmpty(key, "header.key"), "header.key");
        Checks.headerText(value, "header.value");
        Checks.nonNull(appendAction, "append_action");
    }

    /** What to do when the header is already present. */
    public enum AppendAction {
        APPEND_IF_EXISTS_OR_ADD,
        ADD_IF_ABSENT,
        OVERWRITE_IF_EXISTS_OR_ADD,
        OVERWRITE_IF_EXISTS
    }
}
