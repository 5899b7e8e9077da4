package dev.inmesh.interception.install;

import java.util.List;

/**
 * One command of an install.
 *
 * @param description what the step does, for messages
 * @param command     the command line
 * @param stdin       what to feed it, or null
 * @param existsIsOk  true when "File exists" (or "address already assigned") means the step's effect is already
 *                    there (idempotent steps)
 * @param presence    a command whose non-empty output means the step's effect is already there, so the step is
 *                    skipped (for commands the kernel would happily repeat, like {@code ip rule add}); or null
 */
public record Step(String description, List<String> command, String stdin, boolean existsIsOk, List<String> presence) {
    public Step {
        command = List.copyOf(command);
        presence = presence == null ? null : List.copyOf(presence);
    }

    public Step(String description, List<String> command, String stdin, boolean existsIsOk) {
        this(description, command, stdin, existsIsOk, null);
    }

    /** True when the result means the step took effect (or already had). */
    boolean succeeded(CommandRunner.Result result) {
        if (result.ok()) {
            return true;
        }
        String output = result.stderr() + result.stdout();
        return existsIsOk && (output.contains("File exists") || output.contains("already assigned"));
    }

    @Override
    public String toString() {
        return String.join(" ", command);
    }
}
