package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;

/** An address prefix and its length, as Envoy's {@code core.v3.CidrRange}. */
public record CidrRange(String addressPrefix, int prefixLen) {
    public CidrRange {
        Checks.nonEmpty(addressPrefix, "address_prefix");
        boolean v6 = addressPrefix.indexOf(':') >= 0;
        Checks.check(prefixLen >= 0 && prefixLen <= (v6 ? 128 : 32), "prefix_len", prefixLen, v6 ? "0..128" : "0..32");
    }

    @Override
    public String toString() {
        return addressPrefix + "/" + prefixLen;
    }
}
