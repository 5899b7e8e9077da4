package dev.inmesh.interception.install;

import java.util.List;

/** Runs one external command to completion. Implementations never throw for a failing command: they report it. */
@FunctionalInterface
public interface CommandRunner {

    /**
     * Runs {@code command}, feeding it {@code stdin} when not null.
     *
     * @return its exit code and output; a command that could not be started reports exit code 127
     */
    Result run(List<String> command, String stdin);

    /** Runs a command without input. */
    default Result run(List<String> command) {
        return run(command, null);
    }

    /** What a command did. */
    record Result(int exitCode, String stdout, String stderr) {
        public boolean ok() {
            return exitCode == 0;
        }

        public static Result success(String stdout) {
            return new Result(0, stdout, "");
        }

        public static Result failure(int exitCode, String stderr) {
            return new Result(exitCode, "", stderr);
        }

        /** The first line of stderr (or stdout), for error messages. */
        public String firstErrorLine() {
            String text = stderr.isBlank() ? stdout : stderr;
            return text.strip().lines().findFirst().orElse("no output");
        }
    }
}
