package dev.inmesh.cli;

import java.util.List;

/** The subcommands of {@code inmesh}, one line each, so that adding a tool touches one place. */
final class Subcommands {
    private Subcommands() {}

    static List<Object> all() {
        return List.of(
                new dev.inmesh.runtime.tools.RouteCheckCommand(),
                new dev.inmesh.runtime.tools.ProxyConfigCommand(),
                new dev.inmesh.runtime.tools.ProxyStatusCommand(),
                new dev.inmesh.interception.IptablesCommand(),
                new dev.inmesh.interception.ProxyCommand());
    }
}
