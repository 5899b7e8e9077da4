package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.net.IpLiterals;
import io.netty.resolver.HostsFileEntriesProvider;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The hosts file a DNS cluster's names are looked up in before DNS, as Envoy's c-ares resolver
 * ({@code ares_getaddrinfo}) reads it: a name's addresses of the family asked for, in the file's order, names
 * matched without regard to case. The file is parsed once and read again when it changed (its modification time,
 * size or identity), as c-ares keeps it until its modification time moves; whether it changed is asked on a worker
 * thread at each resolution, never on an event loop, and resolutions at the same time share one look. A missing or
 * unreadable file has no entries (c-ares then asks DNS).
 */
final class HostsFile {
    private static final Logger LOG = Logger.getLogger(HostsFile.class.getName());
    /** The system's hosts file. */
    static final Path SYSTEM = Path.of("/etc/hosts");

    private final Vertx vertx;
    private final Path path;
    /** The file as last read, with what it was read from. */
    private volatile Read read = new Read(null, Entries.NONE);
    /** The look at the file in flight, or null. Guarded by this. */
    private Future<Entries> looking;

    HostsFile(Vertx vertx, Path path) {
        this.vertx = vertx;
        this.path = path;
    }

    /** The file's entries as it is now: read again when it changed since the last look. */
    synchronized Future<Entries> entries() {
        Future<Entries> look = looking;
        if (look == null) {
            Future<Entries> started = vertx.executeBlocking(this::current, false);
            looking = started;
            started.onComplete(ar -> {
                synchronized (this) {
                    if (looking == started) {
                        looking = null;
                    }
                }
            });
            look = started;
        }
        return look;
    }

    /** Blocking: the entries of the file as it is now, parsed again only when it changed. */
    private Entries current() {
        Read last = read;
        Object version;
        try {
            BasicFileAttributes a = Files.readAttributes(path, BasicFileAttributes.class);
            version = List.of(a.lastModifiedTime(), a.size(), Objects.requireNonNullElse(a.fileKey(), ""));
        } catch (IOException e) {
            version = e instanceof NoSuchFileException ? "none" : "unreadable";
        }
        if (version.equals(last.version())) {
            return last.entries();
        }
        Entries entries = Entries.NONE;
        if (version instanceof List) {
            try {
                entries = new Entries(HostsFileEntriesProvider.parser().parse(path.toFile()));
            } catch (IOException e) {
                version = "unreadable";
            }
        }
        if (version.equals("unreadable")) {
            LOG.log(Level.WARNING, "hosts file " + path + " not readable; its names are asked of DNS");
        }
        read = new Read(version, entries);
        return entries;
    }

    private record Read(Object version, Entries entries) {}

    /** One reading of a hosts file: its names' IPv4 and IPv6 addresses, by name in lower case. */
    record Entries(Map<String, List<InetAddress>> v4, Map<String, List<InetAddress>> v6) {
        static final Entries NONE = new Entries(Map.of(), Map.of());

        Entries(HostsFileEntriesProvider parsed) {
            this(Map.copyOf(parsed.ipv4Entries()), Map.copyOf(parsed.ipv6Entries()));
        }

        /** The name's IPv6 ({@code v6}) or IPv4 addresses, in the file's order; none when it has none. */
        List<String> addresses(String name, boolean v6) {
            List<InetAddress> found = (v6 ? this.v6 : v4).getOrDefault(name.toLowerCase(Locale.ROOT), List.of());
            List<String> out = new ArrayList<>(found.size());
            for (InetAddress a : found) {
                out.add(IpLiterals.format(a.getAddress()));
            }
            return out;
        }
    }
}
