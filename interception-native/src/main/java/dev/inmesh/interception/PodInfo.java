package dev.inmesh.interception;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * What a pod tells its sidecar about itself beyond plain variables, read as Istio's agent reads it: the pod's labels
 * from the downward API file Istio's injector mounts ({@code /etc/istio/pod/labels}, one {@code key="value"} per
 * line, the value quoted as Go quotes a string), over the older injectors' {@code ISTIO_METAJSON_LABELS} (a JSON
 * object); the members of every {@code ISTIO_METAJSON_*} variable's JSON object, which the agent puts into the
 * node's metadata as they are; and the xDS server the {@code PROXY_CONFIG} variable names.
 */
final class PodInfo {
    /** The label a Deployment's ReplicaSet adds to each pod, which the agent leaves out of the node's labels. */
    static final String POD_TEMPLATE_HASH = "pod-template-hash";
    static final String METAJSON_PREFIX = "ISTIO_METAJSON_";
    /** The discovery address of Istio's default ProxyConfig. */
    static final String DEFAULT_DISCOVERY_ADDRESS = "istiod.istio-system.svc:15012";

    private PodInfo() {}

    /**
     * The pod's labels: {@code ISTIO_METAJSON_LABELS}'s, then the downward API file's over them (without
     * {@code pod-template-hash}); empty outside a pod. A file that cannot be read, a line or a JSON value that cannot
     * be parsed is told to {@code warn} and left out.
     */
    static Map<String, String> labels(Path file, Map<String, String> env, Consumer<String> warn) {
        Map<String, String> labels = new TreeMap<>();
        String json = env.get(METAJSON_PREFIX + "LABELS");
        if (json != null) {
            labels.putAll(strings(METAJSON_PREFIX + "LABELS", json, warn));
        }
        try {
            labels.putAll(downwardApi(Files.readString(file, StandardCharsets.UTF_8), file, warn));
            labels.remove(POD_TEMPLATE_HASH);
        } catch (NoSuchFileException e) {
            // not in a pod, or a pod without the podinfo volume: as the agent, without a word
        } catch (IOException | RuntimeException e) {
            warn.accept("cannot read the pod's labels from " + file + ": " + e.getMessage());
        }
        return labels;
    }

    /**
     * The node metadata the {@code ISTIO_METAJSON_*} variables give: each one's JSON object's members, as the agent
     * merges them into the metadata (their string values; other values are left out, with a warning, which for
     * {@code ISTIO_METAJSON_LABELS} {@link #labels} gives).
     */
    static Map<String, String> metaJson(Map<String, String> env, Consumer<String> warn) {
        Map<String, String> meta = new TreeMap<>();
        new TreeMap<>(env).forEach((name, value) -> {
            if (name.startsWith(METAJSON_PREFIX)) {
                // ISTIO_METAJSON_LABELS' members are the pod's labels too: what they lack is told once, by labels
                meta.putAll(strings(name, value, name.equals(METAJSON_PREFIX + "LABELS") ? w -> { } : warn));
            }
        });
        return meta;
    }

    /**
     * The xDS server Istio's injector names to its agent: the {@code discoveryAddress} of the {@code PROXY_CONFIG}
     * variable (the pod's ProxyConfig, in YAML as the agent reads it, or JSON as the injector writes it), else Istio's
     * default ({@value #DEFAULT_DISCOVERY_ADDRESS}), which the injector leaves out ({@code PROXY_CONFIG: {}}); null
     * without the variable. A {@code PROXY_CONFIG} that cannot be read is told to {@code warn}, and names no server.
     */
    static String discoveryAddress(Map<String, String> env, Consumer<String> warn) {
        JsonObject config = proxyConfig(env, warn);
        if (config == null) {
            return null;
        }
        String address = config.getValue("discoveryAddress") instanceof String a ? a : null;
        return address == null || address.isEmpty() ? DEFAULT_DISCOVERY_ADDRESS : address;
    }

    /**
     * The node metadata the {@code proxyMetadata} of {@code PROXY_CONFIG} gives, as Istio's agent takes it: each
     * {@code ISTIO_META_NAME} entry as {@code NAME} (the agent's own variables come after and win).
     */
    static Map<String, String> proxyMetadata(Map<String, String> env) {
        Map<String, String> meta = new TreeMap<>();
        JsonObject config = proxyConfig(env, w -> { }); // told once, by discoveryAddress
        if (config != null && config.getValue("proxyMetadata") instanceof JsonObject m) {
            m.forEach(e -> {
                if (e.getKey().startsWith("ISTIO_META_") && e.getValue() instanceof String v) {
                    meta.put(e.getKey().substring("ISTIO_META_".length()), v);
                }
            });
        }
        return meta;
    }

    private static JsonObject proxyConfig(Map<String, String> env, Consumer<String> warn) {
        String config = env.get("PROXY_CONFIG");
        if (config == null || config.isBlank()) {
            return null;
        }
        Object parsed;
        try {
            // YAML, as Istio's agent reads it (the injector writes JSON, which is YAML too)
            parsed = new ObjectMapper(new YAMLFactory()).readValue(config, Object.class);
        } catch (IOException e) {
            warn.accept("PROXY_CONFIG is not a YAML or JSON ProxyConfig; left out: " + e.getMessage());
            return null;
        }
        if (!(parsed instanceof Map<?, ?> m)) {
            warn.accept("PROXY_CONFIG is not a YAML or JSON ProxyConfig (an object); left out: " + config);
            return null;
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> members = (Map<String, Object>) m;
        return new JsonObject(members);
    }

    /** A {@code labels} or {@code annotations} file of the downward API: {@code key="value"} lines. */
    static Map<String, String> downwardApi(String text, Path file, Consumer<String> warn) {
        Map<String, String> entries = new TreeMap<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            int eq = line.indexOf('=');
            String value = eq < 1 ? null : unquote(line.substring(eq + 1).strip());
            if (value == null) {
                warn.accept(file + ": line " + line + " is not key=\"value\"; left out");
                continue;
            }
            entries.put(line.substring(0, eq).strip(), value);
        }
        return entries;
    }

    /** A string in Go's double quotes with its escapes ({@code \"}, {@code \\}, {@code \n}, {@code \xHH}, ...). */
    static String unquote(String quoted) {
        if (quoted.length() < 2 || quoted.charAt(0) != '"' || quoted.charAt(quoted.length() - 1) != '"') {
            return null;
        }
        StringBuilder out = new StringBuilder(quoted.length());
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (int i = 1; i < quoted.length() - 1; i++) {
            char c = quoted.charAt(i);
            if (c != '\\') {
                flush(bytes, out);
                out.append(c);
                continue;
            }
            if (++i >= quoted.length() - 1) {
                return null;
            }
            char e = quoted.charAt(i);
            int digits = switch (e) {
                case 'x' -> 2;
                case 'u' -> 4;
                case 'U' -> 8;
                case '0', '1', '2', '3', '4', '5', '6', '7' -> 3;
                default -> 0;
            };
            if (digits > 0) {
                int start = e >= '0' && e <= '7' ? i : i + 1;
                if (start + digits > quoted.length() - 1) {
                    return null;
                }
                int code;
                try {
                    code = Integer.parseInt(quoted.substring(start, start + digits), e >= '0' && e <= '7' ? 8 : 16);
                } catch (NumberFormatException bad) {
                    return null;
                }
                i = start + digits - 1;
                if (e == 'x' || e >= '0' && e <= '7') {
                    bytes.write(code); // a byte of UTF-8
                } else if (Character.isValidCodePoint(code)) {
                    flush(bytes, out);
                    out.appendCodePoint(code);
                } else {
                    return null;
                }
                continue;
            }
            flush(bytes, out);
            switch (e) {
                case 'a' -> out.append('\u0007');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'n' -> out.append('\n');
                case 'r' -> out.append('\r');
                case 't' -> out.append('\t');
                case 'v' -> out.append('\u000b');
                case '\\', '"', '\'' -> out.append(e);
                default -> {
                    return null;
                }
            }
        }
        flush(bytes, out);
        return out.toString();
    }

    private static void flush(java.io.ByteArrayOutputStream bytes, StringBuilder out) {
        if (bytes.size() > 0) {
            out.append(bytes.toString(StandardCharsets.UTF_8));
            bytes.reset();
        }
    }

    private static Map<String, String> strings(String name, String json, Consumer<String> warn) {
        Map<String, String> out = new TreeMap<>();
        JsonObject object;
        try {
            object = new JsonObject(json);
        } catch (DecodeException | ClassCastException e) {
            warn.accept(name + " is not a JSON object; left out: " + json);
            return out;
        }
        object.forEach(member -> {
            if (member.getValue() instanceof String s) {
                out.put(member.getKey(), s);
            } else {
                warn.accept(name + ": " + member.getKey() + " is not a string; left out");
            }
        });
        return out;
    }
}
