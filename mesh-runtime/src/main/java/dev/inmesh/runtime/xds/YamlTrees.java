package dev.inmesh.runtime.xds;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.io.IOContext;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.events.AliasEvent;
import org.yaml.snakeyaml.events.Event;
import org.yaml.snakeyaml.events.NodeEvent;
import org.yaml.snakeyaml.events.ScalarEvent;

/**
 * YAML documents as JSON trees, the way Envoy turns its YAML into JSON before reading a message from it
 * ({@code yaml_utility.cc}, over yaml-cpp): an alias ({@code *name}) is a copy of the value its anchor
 * ({@code &name}) marked earlier in the same document, and a key tagged {@code !ignore} is left out with its value,
 * so that anchors can be declared outside the configuration's own fields, as Envoy's documentation shows. A merge key
 * ({@code <<}) is refused by name: yaml-cpp has none, and Envoy reads it as a field of that name, which no message has.
 * Scalars are typed as Jackson's YAML reader types them, as the rest of Inmesh reads YAML, or, where asked, as Envoy
 * types them.
 *
 * <p>Jackson's own tree reader knows neither: it reads an alias as a string of its anchor's name (a cluster's
 * {@code load_assignment: *endpoints} became the string {@code "endpoints"}) and drops tags of keys.
 */
final class YamlTrees {
    private static final Factory FACTORY = new Factory();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private YamlTrees() {}

    /**
     * Each document of {@code text}, empty ones (and ones that are only {@code null}) left out; the scalars typed as
     * Envoy types them ({@link #envoyScalar}) with {@code envoyScalars}, else as Jackson's YAML reader types them.
     */
    static List<JsonNode> documents(String text, boolean envoyScalars) throws JsonProcessingException {
        List<JsonNode> docs = new ArrayList<>();
        try (Parser p = (Parser) FACTORY.createParser(new StringReader(text))) {
            while (p.nextToken() != null) {
                // anchors are a document's own
                JsonNode n = new Document(p, envoyScalars).value();
                if (!n.isNull()) {
                    docs.add(n);
                }
            }
        } catch (JsonProcessingException e) {
            throw e;
        } catch (IOException e) {
            throw new IllegalStateException("reading a string cannot fail", e);
        }
        return docs;
    }

    /** One document's reading: the values its anchors marked so far. */
    private static final class Document {
        private final Parser p;
        private final boolean envoyScalars;
        private final Map<String, JsonNode> anchors = new HashMap<>();

        Document(Parser p, boolean envoyScalars) {
            this.p = p;
            this.envoyScalars = envoyScalars;
        }

        /** The value at the parser's current token, read to its end. */
        JsonNode value() throws IOException {
            Event event = p.event();
            if (event instanceof AliasEvent alias) {
                JsonNode marked = anchors.get(alias.getAnchor());
                if (marked == null) {
                    throw new YamlError("alias *" + alias.getAnchor() + " names no anchor before it", p);
                }
                return marked.deepCopy();
            }
            JsonNode node = switch (p.currentToken()) {
                case START_OBJECT -> object();
                case START_ARRAY -> array();
                default -> envoyScalars && event instanceof ScalarEvent scalar ? envoyScalar(scalar) : scalar();
            };
            String anchor = event instanceof NodeEvent n ? n.getAnchor() : null;
            if (anchor != null) {
                anchors.put(anchor, node);
            }
            return node;
        }

        /** The scalar at the parser's current token as Jackson's YAML reader types it. */
        private JsonNode scalar() throws IOException {
            return switch (p.currentToken()) {
                case VALUE_STRING -> NODES.textNode(p.getText());
                case VALUE_NUMBER_INT -> switch (p.getNumberType()) {
                    case INT -> NODES.numberNode(p.getIntValue());
                    case LONG -> NODES.numberNode(p.getLongValue());
                    default -> NODES.numberNode(p.getBigIntegerValue());
                };
                case VALUE_NUMBER_FLOAT -> p.getNumberType() == JsonParser.NumberType.BIG_DECIMAL
                        ? NODES.numberNode(p.getDecimalValue()) : NODES.numberNode(p.getDoubleValue());
                case VALUE_TRUE -> NODES.booleanNode(true);
                case VALUE_FALSE -> NODES.booleanNode(false);
                case VALUE_EMBEDDED_OBJECT -> p.getEmbeddedObject() instanceof byte[] bytes ? NODES.binaryNode(bytes)
                        : NODES.pojoNode(p.getEmbeddedObject());
                default -> NODES.nullNode();
            };
        }

        private ObjectNode object() throws IOException {
            ObjectNode o = NODES.objectNode();
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                boolean ignored = p.event() instanceof ScalarEvent key && "!ignore".equals(key.getTag());
                if (!ignored && "<<".equals(name) && p.event() instanceof ScalarEvent key && key.isPlain()) {
                    throw new YamlError("merge key (<<) is not supported (nor by Envoy's YAML reader): write the "
                            + "fields out, or alias a whole value", p);
                }
                p.nextToken();
                JsonNode v = value();
                if (!ignored) {
                    o.set(name, v);
                }
            }
            return o;
        }

        private ArrayNode array() throws IOException {
            ArrayNode a = NODES.arrayNode();
            while (p.nextToken() != JsonToken.END_ARRAY) {
                a.add(value());
            }
            return a;
        }
    }

    /** yaml-cpp's bools (convert.cpp), each in lower case, upper case or capitalized. */
    private static final Pattern BOOL = Pattern.compile("(?:y|yes|true|on|n|no|false|off)", Pattern.CASE_INSENSITIVE);
    private static final Pattern FLEXIBLE_CASE = Pattern.compile("[a-z]*|[A-Z][a-z]*|[A-Z]+");
    /** An integer as yaml-cpp's stream reads one, its base from its prefix: 0x hex, 0 octal, else decimal. */
    private static final Pattern INTEGER = Pattern.compile("([+-]?)(?:0[xX]([0-9a-fA-F]+)|0([0-7]*)|([1-9][0-9]*))");

    /**
     * A scalar as Envoy types it on its way from YAML to JSON (parseYamlNode, source/common/protobuf/yaml_utility.cc,
     * over yaml-cpp 0.8's conversions): a quoted or block scalar is a string, as one tagged {@code !} (one with another
     * explicit tag is typed by its value); a plain one is null ({@code ~},
     * {@code null}, nothing), a bool ({@code y}, {@code yes}, {@code true}, {@code on} and their {@code n},
     * {@code no}, {@code false}, {@code off}), an int64 ({@code 0x} hex, {@code 0} octal or decimal) as a number
     * when it fits 32 bits and else as the string of its decimal digits, or else the string as written
     * ({@code 1.50}, {@code 1e3}, {@code .inf}).
     */
    static JsonNode envoyScalar(ScalarEvent s) {
        String v = s.getValue();
        // yaml-cpp gives a quoted or block scalar the non-specific tag "!" (and so does an explicit "!"), which
        // Envoy takes for a string; any other scalar, another explicit tag's too, is typed by its value
        if (s.getTag() == null ? !s.isPlain() : "!".equals(s.getTag())) {
            return NODES.textNode(v);
        } else if (s.getTag() == null && List.of("", "~", "null", "Null", "NULL").contains(v)) {
            return NODES.nullNode();
        } else if (BOOL.matcher(v).matches() && FLEXIBLE_CASE.matcher(v).matches()) {
            return NODES.booleanNode(List.of("y", "yes", "true", "on").contains(v.toLowerCase(Locale.ROOT)));
        }
        Matcher m = INTEGER.matcher(v);
        if (m.matches()) {
            BigInteger i = m.group(2) != null ? new BigInteger(m.group(2), 16)
                    : m.group(3) != null ? (m.group(3).isEmpty() ? BigInteger.ZERO : new BigInteger(m.group(3), 8))
                    : new BigInteger(m.group(4));
            i = m.group(1).equals("-") ? i.negate() : i;
            if (i.bitLength() <= 31) {
                return NODES.numberNode(i.intValue());
            } else if (i.bitLength() <= 63) {
                return NODES.textNode(i.toString());
            }
        }
        return NODES.textNode(v);
    }

    /** A YAML document Inmesh cannot read into JSON, and where. */
    private static final class YamlError extends JsonProcessingException {
        private static final long serialVersionUID = 1L;

        YamlError(String message, JsonParser p) {
            super(message, p.currentLocation());
        }
    }

    /** Jackson's YAML factory whose parsers show the YAML event behind each token. */
    private static final class Factory extends YAMLFactory {
        private static final long serialVersionUID = 1L;

        @Override
        protected YAMLParser _createParser(Reader r, IOContext ctxt) throws IOException {
            return new Parser(ctxt, _parserFeatures, _yamlParserFeatures, _loaderOptions, _objectCodec, r);
        }
    }

    /** Jackson's YAML parser, with the event (anchor, alias, tag) of its current token. */
    private static final class Parser extends YAMLParser {
        Parser(IOContext ctxt, int parserFeatures, int formatFeatures, LoaderOptions options,
               com.fasterxml.jackson.core.ObjectCodec codec, Reader reader) {
            super(ctxt, parserFeatures, formatFeatures, options, codec, reader);
        }

        Event event() {
            return _lastEvent;
        }
    }
}
