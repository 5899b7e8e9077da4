package dev.inmesh.cli;

import dev.inmesh.interception.IptablesCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code inmesh} command line: one entry point, one subcommand per tool. {@code bin/inmesh} runs it from the
 * standalone jar. Subcommands return their own exit codes; a usage error exits with its subcommand's code for one
 * (picocli's 2, unless the subcommand names another), an exception with 2.
 */
@Command(
        name = "inmesh",
        mixinStandardHelpOptions = true,
        versionProvider = InmeshCommand.Version.class,
        description = "Inmesh: a service mesh inside the JVM, and its standalone tools.",
        subcommands = {CommandLine.HelpCommand.class})
public final class InmeshCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
    }

    /** Builds the command line with every subcommand registered. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new InmeshCommand());
        for (Object sub : Subcommands.all()) {
            CommandLine command = new CommandLine(sub);
            // each tool's --version prints the version of inmesh, as `inmesh --version` does
            command.getCommandSpec().versionProvider(new Version());
            if (sub instanceof IptablesCommand) {
                IptablesCommand.configure(command);
            }
            cl.addSubcommand(command);
        }
        cl.setExitCodeExceptionMapper(t -> t instanceof CommandLine.ParameterException e
                ? e.getCommandLine().getCommandSpec().exitCodeOnInvalidInput() : 2);
        return cl;
    }

    public static void main(String[] args) {
        // before anything logs: the proxy's logs then last until its stop is over, not the JVM's shutdown's start
        if (System.getProperty("java.util.logging.manager") == null) {
            System.setProperty("java.util.logging.manager", dev.inmesh.interception.ProxyLogManager.class.getName());
        }
        System.exit(commandLine().execute(args));
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = InmeshCommand.class.getPackage().getImplementationVersion();
            return new String[] {"inmesh " + (v == null ? "dev" : v)};
        }
    }
}
