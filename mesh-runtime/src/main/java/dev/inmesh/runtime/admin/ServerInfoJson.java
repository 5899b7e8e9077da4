package dev.inmesh.runtime.admin;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;

/**
 * Prints {@code /server_info} (and {@code /certs}, {@code /memory}) as Envoy does: snake_case names, and fields at
 * their default values too.
 */
final class ServerInfoJson {
    private ServerInfoJson() {}

    static String print(MessageOrBuilder info) throws InvalidProtocolBufferException {
        // with the defaults, as Envoy prints it: state LIVE is the enum's zero, no certificates an empty list
        return JsonFormat.printer().preservingProtoFieldNames().includingDefaultValueFields().print(info);
    }
}
