package dev.inmesh.runtime.tools;

import dev.inmesh.runtime.xds.ads.XdsStatus;
import dev.inmesh.runtime.xds.ads.XdsStatusJson;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code inmesh proxy-status}: the ADS stream's state as the proxy's admin server reports it at
 * {@code /debug/xds_status}: the xDS server, and per type the version ACKed, the nonce, the resources held and the
 * last NACK, as {@code istioctl proxy-status} prints SYNCED or not. Exit codes: 0 connected and nothing NACKed, 1
 * disconnected or a type NACKed, 2 the admin endpoint unreachable or its answer unreadable.
 */
@Command(name = "proxy-status", aliases = "ps", mixinStandardHelpOptions = true,
        description = "Prints the xDS (ADS) status of a running proxy: server, and per type the ACKed version, nonce "
                + "and last NACK, from its admin endpoint /debug/xds_status.")
public final class ProxyStatusCommand implements Callable<Integer> {
    static final String PATH = "/debug/xds_status";

    @Option(names = {"-a", "--admin"}, paramLabel = "HOST:PORT", defaultValue = "http://127.0.0.1:15000",
            description = "The proxy's admin server, http://HOST:PORT or HOST:PORT (default: ${DEFAULT-VALUE}).")
    String admin;

    @Option(names = "--json", description = "Print the status as the admin endpoint serves it (JSON).")
    boolean json;

    @Option(names = "--timeout", paramLabel = "DURATION", defaultValue = "PT5S",
            description = "How long to wait for the admin server (ISO-8601, default: ${DEFAULT-VALUE}).")
    Duration timeout;

    PrintStream out = System.out;
    PrintStream err = System.err;

    @Override
    public Integer call() {
        String body;
        URI uri;
        try {
            uri = AdminAddress.uri(admin, PATH);
            HttpClient http = HttpClient.newBuilder().connectTimeout(timeout).build();
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(uri).timeout(timeout).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                // the admin server's reason, such as Inmesh's "no xDS client: the configuration comes from a file"
                String reason = r.body() == null ? "" : r.body().strip().lines().findFirst().orElse("");
                err.println("proxy-status: " + uri + ": HTTP " + r.statusCode()
                        + (reason.isEmpty() ? "" : ": " + reason));
                return 2;
            }
            body = r.body();
        } catch (IllegalArgumentException e) {
            err.println("proxy-status: " + e.getMessage());
            return 2;
        } catch (IOException e) {
            err.println("proxy-status: cannot reach " + admin + PATH + ": " + e);
            return 2;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 2;
        }
        XdsStatus status;
        try {
            status = XdsStatusJson.decode(body);
        } catch (IllegalArgumentException e) {
            err.println("proxy-status: " + uri + ": " + e.getMessage());
            return 2;
        }
        if (json) {
            out.println(body.strip());
        } else {
            print(status, out);
        }
        boolean nacked = status.types().stream().anyMatch(XdsStatus.TypeStatus::nacked);
        return status.connected() && !nacked ? 0 : 1;
    }

    /** Prints a status as a table, NACK errors below it. */
    static void print(XdsStatus s, PrintStream out) {
        out.println("SERVER     " + s.server() + (s.connected() ? "  connected since " + s.connectedSince()
                : "  DISCONNECTED" + (s.lastError().isEmpty() ? "" : ": " + s.lastError())));
        out.println("READY      " + s.ready());
        String fmt = "%-22s %-8s %-24s %-8s %-10s %s%n";
        out.printf(fmt, "TYPE", "STATUS", "ACKED VERSION", "NONCE", "RESOURCES", "SUBSCRIBED");
        for (XdsStatus.TypeStatus t : s.types()) {
            String state = t.nacked() ? "NACKED" : t.nonce().isEmpty() ? "NOT SENT" : "SYNCED";
            String names = t.wildcard() ? "*" : String.join(",", t.subscribed());
            out.printf(fmt, t.type(), state, dash(t.ackedVersion()), dash(t.nonce()), t.resources(), dash(names));
        }
        for (XdsStatus.TypeStatus t : s.types()) {
            if (!t.lastNackError().isEmpty()) {
                out.println();
                out.println("LAST NACK  " + t.type() + " version " + dash(t.lastNackVersion()) + " at "
                        + t.lastNackAt() + (t.nacked() ? "" : " (since superseded)"));
                out.println("           " + t.lastNackError());
            }
        }
    }

    private static String dash(String s) {
        return s.isEmpty() ? "-" : s;
    }
}
