package dev.inmesh.runtime.tools;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** {@code inmesh route-check}: Envoy's route table check tool, on Inmesh's routing core. */
@Command(name = "route-check", description = "Checks a route configuration against a file of expected routing decisions.")
public final class RouteCheckCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        System.err.println("route-check: not yet");
        return 2;
    }
}
