package dev.inmesh.interception.install;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs commands as child processes, optionally inside a network namespace: a name (as {@code ip netns} knows it) is
 * entered with {@code ip netns exec NAME}, a path (such as {@code /proc/PID/ns/net}) with {@code nsenter --net=PATH}.
 */
public final class ProcessCommandRunner implements CommandRunner {
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private final List<String> prefix;

    private ProcessCommandRunner(List<String> prefix) {
        this.prefix = List.copyOf(prefix);
    }

    /** Runs commands in the current network namespace. */
    public static ProcessCommandRunner local() {
        return new ProcessCommandRunner(List.of());
    }

    /** Runs commands in the given network namespace; null or empty means the current one. */
    public static ProcessCommandRunner inNamespace(String namespace) {
        if (namespace == null || namespace.isEmpty()) {
            return local();
        }
        if (namespace.indexOf('/') >= 0) {
            return new ProcessCommandRunner(List.of("nsenter", "--net=" + namespace, "--"));
        }
        return new ProcessCommandRunner(List.of("ip", "netns", "exec", namespace));
    }

    @Override
    public Result run(List<String> command, String stdin) {
        List<String> argv = new ArrayList<>(prefix);
        argv.addAll(command);
        Process process;
        try {
            process = new ProcessBuilder(argv).start();
        } catch (IOException e) {
            return Result.failure(127, argv.get(0) + ": " + e.getMessage());
        }
        CompletableFuture<String> out = drain(process.getInputStream());
        CompletableFuture<String> err = drain(process.getErrorStream());
        try (OutputStream in = process.getOutputStream()) {
            if (stdin != null) {
                in.write(stdin.getBytes(StandardCharsets.UTF_8));
            }
        } catch (IOException e) {
            // the command exited early; its exit code and stderr say why
        }
        try {
            if (!process.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                process.destroyForcibly();
                return Result.failure(124, String.join(" ", argv) + ": timed out after " + TIMEOUT.toSeconds() + "s");
            }
            return new Result(process.exitValue(), out.join(), err.join());
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            return Result.failure(130, String.join(" ", argv) + ": interrupted");
        }
    }

    private static CompletableFuture<String> drain(InputStream stream) {
        // A thread of its own per stream: a shared pool could starve one drain while the child blocks on a full pipe.
        CompletableFuture<String> text = new CompletableFuture<>();
        Thread reader = new Thread(() -> {
            try (stream) {
                text.complete(new String(stream.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                text.complete("");
            }
        }, "command-output");
        reader.setDaemon(true);
        reader.start();
        return text;
    }
}
