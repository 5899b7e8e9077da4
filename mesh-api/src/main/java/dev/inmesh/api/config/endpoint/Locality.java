package dev.inmesh.api.config.endpoint;


/** Where a group of endpoints runs: region, zone and sub-zone (each may be empty). */
public record Locality(String region, String zone, String subZone) {
    public static final Locality EMPTY = new Locality("", "", "");

    public Locality {
        region = region == null ? "" : region;
        zone = zone == null ? "" : zone;
        subZone = subZone == null ? "" : subZone;
    }

    @Override
    public String toString() {
        return region + "/" + zone + "/" + subZone;
    }

}
