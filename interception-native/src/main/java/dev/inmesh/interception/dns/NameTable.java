package dev.inmesh.interception.dns;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.WireFormat;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * istiod's name table ({@code istio.networking.nds.v1.NameTable}, NDS), which Istio's agent asks for on the proxy's
 * xDS stream and answers DNS from: each host name of the services the proxy sees with their addresses. Read from
 * its protobuf wire form field by field (the message is Istio's, not Envoy's, so there is no class for it):
 * {@code map<string, NameInfo> table = 1}, and in each {@code NameInfo} {@code repeated string ips = 1},
 * {@code registry = 2}, {@code shortname = 3}, {@code namespace = 4}, {@code repeated string alt_hosts = 5}; other
 * fields are skipped, as protobuf skips fields it does not know.
 *
 * @param table the host names, in the order read, with what resolves them
 */
public record NameTable(Map<String, NameInfo> table) {
    /** Field 1 or 2, length-delimited (strings and messages): the tags this reader takes. */
    private static final int FIELD_1 = 1 << 3 | WireFormat.WIRETYPE_LENGTH_DELIMITED;
    private static final int FIELD_2 = 2 << 3 | WireFormat.WIRETYPE_LENGTH_DELIMITED;

    /** The type URL of the message in xDS. */
    public static final String TYPE_URL = dev.inmesh.runtime.xds.ads.AdsOptions.NAME_TABLE_TYPE;

    public NameTable {
        table = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(table));
    }

    /**
     * What resolves one host name.
     *
     * @param ips the addresses, as istiod writes them (text; ones that do not parse are left out by the table)
     * @param registry the service registry ({@code Kubernetes} for a Kubernetes service; then the short names apply)
     * @param shortname the Kubernetes service's name
     * @param namespace the Kubernetes service's namespace
     * @param altHosts further names of the host (deprecated in Istio, still honoured by its agent)
     */
    public record NameInfo(List<String> ips, String registry, String shortname, String namespace,
                           List<String> altHosts) {
        public NameInfo {
            ips = List.copyOf(ips);
            registry = registry == null ? "" : registry;
            shortname = shortname == null ? "" : shortname;
            namespace = namespace == null ? "" : namespace;
            altHosts = List.copyOf(altHosts);
        }
    }

    /** Reads a name table from its wire form; throws naming the field that is malformed. */
    public static NameTable parse(ByteString bytes) throws InvalidProtocolBufferException {
        Map<String, NameInfo> table = new LinkedHashMap<>();
        try {
            CodedInputStream in = bytes.newCodedInput();
            for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
                if (tag == FIELD_1) {
                    entry(in.readBytes(), table);
                } else {
                    in.skipField(tag);
                }
            }
        } catch (IOException e) {
            // only malformed bytes fail a read from a byte string
            throw new InvalidProtocolBufferException("NameTable.table: " + e.getMessage());
        }
        return new NameTable(table);
    }

    private static void entry(ByteString bytes, Map<String, NameInfo> table) throws IOException {
        CodedInputStream in = bytes.newCodedInput();
        String key = "";
        NameInfo value = new NameInfo(List.of(), "", "", "", List.of());
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            if (tag == FIELD_1) {
                key = in.readStringRequireUtf8();
            } else if (tag == FIELD_2) {
                value = info(in.readBytes());
            } else {
                in.skipField(tag);
            }
        }
        table.put(key, value); // as protobuf's maps: a key read again replaces the value
    }

    private static NameInfo info(ByteString bytes) throws IOException {
        CodedInputStream in = bytes.newCodedInput();
        List<String> ips = new ArrayList<>();
        List<String> alt = new ArrayList<>();
        String[] text = {"", "", ""};
        for (int tag = in.readTag(); tag != 0; tag = in.readTag()) {
            int field = WireFormat.getTagFieldNumber(tag);
            if (WireFormat.getTagWireType(tag) != WireFormat.WIRETYPE_LENGTH_DELIMITED || field < 1 || field > 5) {
                in.skipField(tag);
            } else if (field == 1) {
                ips.add(in.readStringRequireUtf8());
            } else if (field == 5) {
                alt.add(in.readStringRequireUtf8());
            } else {
                text[field - 2] = in.readStringRequireUtf8();
            }
        }
        return new NameInfo(ips, text[0], text[1], text[2], alt);
    }

    /** The wire form, as istiod sends it (for tests and tools that write a table). */
    public ByteString toByteString() {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            CodedOutputStream o = CodedOutputStream.newInstance(out);
            for (Map.Entry<String, NameInfo> e : table.entrySet()) {
                ByteString info = info(e.getValue());
                ByteArrayOutputStream entry = new ByteArrayOutputStream();
                CodedOutputStream eo = CodedOutputStream.newInstance(entry);
                eo.writeString(1, e.getKey());
                eo.writeBytes(2, info);
                eo.flush();
                o.writeBytes(1, ByteString.copyFrom(entry.toByteArray()));
            }
            o.flush();
            return ByteString.copyFrom(out.toByteArray());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e); // not on a byte array
        }
    }

    private static ByteString info(NameInfo n) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        CodedOutputStream o = CodedOutputStream.newInstance(out);
        for (String ip : n.ips()) {
            o.writeString(1, ip);
        }
        String[] text = {n.registry(), n.shortname(), n.namespace()};
        for (int i = 0; i < text.length; i++) {
            if (!text[i].isEmpty()) {
                o.writeString(i + 2, text[i]);
            }
        }
        for (String h : n.altHosts()) {
            o.writeString(5, h);
        }
        o.flush();
        return ByteString.copyFrom(out.toByteArray());
    }
}
