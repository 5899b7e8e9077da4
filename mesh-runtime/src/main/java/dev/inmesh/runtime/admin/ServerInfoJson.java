package dev.inmesh.runtime.admin;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.envoyproxy.envoy.admin.v3.ServerInfo;

/** Prints {@code /server_info} as Envoy does: snake_case names, and fields at their default values too. */
final class ServerInfoJson {
    private ServerInfoJson() {}

    static String print(ServerInfo info) throws InvalidProtocolBufferException {
        // with the defaults, as Envoy prints it: state LIVE is the enum's zero
        return JsonFormat.printer().preservingProtoFieldNames().includingDefaultValueFields().print(info);
    }
}
