package dev.inmesh.runtime.tools;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.runtime.stats.EnvoyNumbers;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code inmesh route-check}: checks a route configuration against expected routing decisions, reading the test
 * files of Envoy's route table check tool ({@code router_check_tool}). Exit codes, as that tool's: 0 all passed, 1 a
 * test failed, the route coverage is under {@code --fail-under}, or the command line, the input or the output file
 * cannot be used.
 */
@Command(name = "route-check", mixinStandardHelpOptions = true, exitCodeOnInvalidInput = 1,
        description = "Checks a route configuration (Envoy JSON/YAML) against a file of expected routing decisions "
                + "in the format of Envoy's router_check_tool.")
public final class RouteCheckCommand implements Callable<Integer> {

    @Option(names = {"-c", "--config-path"}, paramLabel = "ROUTES", description = "Required: a RouteConfiguration "
            + "in JSON or YAML (or a document holding exactly one).")
    Path routes;

    @Option(names = {"-t", "--test-path"}, paramLabel = "TESTS", description = "Required: the tests: "
            + "{\"tests\": [{\"test_name\", \"input\", \"validate\"}]} in JSON or YAML.")
    Path tests;

    @Option(names = {"-d", "--details"}, description = "Print each test's name (a failed test's on standard error, "
            + "with its failures).")
    boolean details;

    @Option(names = "--only-show-failures", description = "Print only the failed tests, with their failures (with "
            + "or without --details).")
    boolean onlyFailures;

    @Option(names = {"-f", "--fail-under"}, paramLabel = "PERCENT", description = "Fail (exit 1) when the route "
            + "coverage is under PERCENT; 0, the default, checks nothing.")
    double failUnder;

    @Option(names = "--covall", description = "Measure the coverage over every field a route's tests can check, "
            + "and list the routes without a test.")
    boolean comprehensiveCoverage;

    @Option(names = "--detailed-coverage", description = "List the routes without a test by name.")
    boolean detailedCoverage;

    /**
     * Envoy's tool checks the route configuration for deprecated fields unless given this; Inmesh reads a deprecated
     * field as its proxy does, the same with or without it.
     */
    @Option(names = "--disable-deprecation-check", description = "Accepted as Envoy's router_check_tool takes it; "
            + "changes nothing: deprecated fields are read as the proxy reads them.")
    boolean disableDeprecationCheck;

    @Option(names = {"-o", "--output-path"}, paramLabel = "FILE", description = "Also write the test results to FILE "
            + "as Envoy's router_check_tool does: a binary envoy.RouterCheckToolSchema.ValidationResult (only the "
            + "failures with --only-show-failures).")
    Path output;

    PrintStream out = System.out;
    PrintStream err = System.err;

    @Override
    public Integer call() {
        if (routes == null || tests == null) {
            // in the words and with the exit code of router_check_tool
            err.println("error: Both --config-path/c and --test-path/t are mandatory");
            return 1;
        }
        RouteCheck check;
        List<RouteCheck.TestCase> cases;
        try {
            check = loadRoutes(routes);
            cases = RouteCheck.parseTests(readTree(tests));
        } catch (InputException e) {
            err.println("route-check: " + e.getMessage());
            return 1;
        } catch (RouteCheck.TestFileException e) {
            err.println("route-check: " + tests + ": " + e.getMessage());
            return 1;
        }
        RouteCheck.Summary summary = check.run(cases, out, err, details, onlyFailures);
        if (output != null) {
            try {
                Files.write(output, ValidationResults.encode(summary.outcomes().stream()
                        .filter(o -> !onlyFailures || !o.passed()).toList()));
            } catch (IOException e) {
                err.println("route-check: " + output + ": cannot write: " + EnvoyConfigReader.describeIo(e));
                return 1;
            }
        }
        if (summary.failed() > 0) {
            return 1;
        }
        return coverage(check.coverage());
    }

    /**
     * As router_check_tool once every test passed: the routes without a test (with {@code --covall} or
     * {@code --detailed-coverage}), the coverage, and exit 1 when it is under {@code --fail-under}. Envoy's tool
     * holds both numbers as {@code float}s.
     */
    private int coverage(RouteCoverage coverage) {
        if (comprehensiveCoverage || detailedCoverage) {
            coverage.missing(comprehensiveCoverage).forEach(out::println);
        }
        float current = coverage.percent(comprehensiveCoverage);
        float threshold = (float) failUnder;
        out.println("Current route coverage: " + (Float.isNaN(current) ? NO_ROUTES : EnvoyNumbers.general(current))
                + "%");
        if (threshold != 0 && current < threshold) {
            err.println("Failed to meet coverage requirement: " + EnvoyNumbers.general(threshold) + "%");
            return 1;
        }
        return 0;
    }

    /**
     * The coverage Envoy's tool prints for a route configuration without routes: 0 / 0, a NaN that glibc prints with
     * its sign, which x86's division sets ({@code -nan}) and ARM's does not ({@code nan}).
     */
    static final String NO_ROUTES = System.getProperty("os.arch", "").matches("amd64|x86_64|x86|i[3-6]86")
            ? "-nan" : "nan";

    /** The checks of the one RouteConfiguration of a file, its routes as parsed and as written. */
    static RouteCheck loadRoutes(Path file) throws InputException {
        if (!Files.exists(file)) {
            throw new InputException(file + ": no such file");
        } else if (Files.isDirectory(file)) {
            throw new InputException(file + ": is a directory (expected a file with one RouteConfiguration)");
        }
        ResourceBundle bundle;
        try {
            bundle = EnvoyConfigReader.read(file);
        } catch (EnvoyConfigReader.ConfigReadException e) {
            throw new InputException(e.getMessage());
        }
        if (bundle.routes().size() != 1) {
            throw new InputException(file + ": expected exactly one RouteConfiguration, found "
                    + bundle.routes().size());
        }
        RouteConfiguration config = bundle.routes().values().iterator().next();
        return new RouteCheck(config, (io.envoyproxy.envoy.config.route.v3.RouteConfiguration)
                bundle.message(ResourceType.ROUTE, config.name()));
    }

    static JsonNode readTree(Path file) throws InputException {
        if (!Files.exists(file)) {
            throw new InputException(file + ": no such file");
        } else if (Files.isDirectory(file)) {
            throw new InputException(file + ": is a directory (expected a test file)");
        }
        try {
            // as Envoy's tool loads it (MessageUtil::loadFromFile): YAML's scalars typed as Envoy types them
            return EnvoyJson.envoyTree(EnvoyConfigReader.decode(Files.readAllBytes(file)));
        } catch (JsonProcessingException e) {
            throw new InputException(file + ": not valid JSON or YAML: " + e.getOriginalMessage());
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new InputException(file + ": cannot read: not UTF-8 text");
        } catch (java.nio.file.FileSystemException e) {
            throw new InputException(file + ": cannot read: " + (e.getReason() != null ? e.getReason()
                    : e.getClass().getSimpleName()));
        } catch (IOException e) {
            throw new InputException(file + ": cannot read: " + e.getMessage());
        }
    }

    static final class InputException extends Exception {
        private static final long serialVersionUID = 1L;

        InputException(String message) {
            super(message);
        }
    }
}
