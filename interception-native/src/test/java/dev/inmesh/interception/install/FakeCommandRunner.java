package dev.inmesh.interception.install;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/** Records every command and answers with a script; unscripted commands succeed with no output. */
final class FakeCommandRunner implements CommandRunner {
    private final List<List<String>> commands = new ArrayList<>();
    private final List<String> inputs = new ArrayList<>();
    private Function<List<String>, Result> script = c -> Result.success("");

    FakeCommandRunner answering(Function<List<String>, Result> script) {
        this.script = script;
        return this;
    }

    @Override
    public Result run(List<String> command, String stdin) {
        commands.add(List.copyOf(command));
        inputs.add(stdin);
        Result r = script.apply(command);
        return r != null ? r : Result.success("");
    }

    List<String> commandLines() {
        return commands.stream().map(c -> String.join(" ", c)).toList();
    }

    boolean ran(String commandLine) {
        return commandLines().contains(commandLine);
    }

    int indexOf(String commandLine) {
        return commandLines().indexOf(commandLine);
    }

    long count(String prefix) {
        return commandLines().stream().filter(l -> l.startsWith(prefix)).count();
    }
}
