package dev.inmesh.samples.bookinfo;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/** The product page's HTML: the book, its details, its reviews with no, black or red stars. */
final class ProductPageHtml {
    private ProductPageHtml() {}

    private static final String STYLE = """
            body { font-family: sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
            header { display: flex; justify-content: space-between; align-items: center;
                     border-bottom: 1px solid #ccc; }
            .columns { display: flex; gap: 3em; }
            .columns > section { flex: 1; }
            dt { font-weight: bold; } dd { margin: 0 0 .5em 0; }
            blockquote { margin: 0 0 1.5em 0; }
            .stars { font-size: 1.4em; letter-spacing: .1em; }
            .error { color: #a00; }
            small { color: #666; }
            """;

    static String index() {
        return """
                <!DOCTYPE html>
                <html><head><meta charset="utf-8"><title>Simple Bookstore App</title></head>
                <body><h1>Hello! This is a simple bookstore application consisting of three services as shown \
                below</h1>
                <p>productpage calls details and reviews; reviews v2 and v3 call ratings. Every call goes through the
                calling service's in-JVM mesh.</p>
                <p><a href="/productpage">Normal user</a> | <a href="/productpage?u=test">Test user</a></p>
                </body></html>
                """;
    }

    static String page(JsonObject product, ProductPage.Answer details, ProductPage.Answer reviews, String user) {
        StringBuilder b = new StringBuilder(4096);
        b.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Simple Bookstore App</title>")
                .append("<style>").append(STYLE).append("</style></head>\n<body>\n<header><h2>BookInfo Sample</h2>");
        if (user.isEmpty()) {
            b.append("<form method=\"post\" action=\"/login\"><input name=\"username\" placeholder=\"User Name\">")
                    .append("<input name=\"passwd\" type=\"password\" placeholder=\"Password\">")
                    .append("<button type=\"submit\">Sign in</button></form>");
        } else {
            b.append("<p>").append(esc(user)).append(" <a href=\"/logout\">sign out</a></p>");
        }
        b.append("</header>\n<h1>").append(esc(product.getString("title"))).append("</h1>\n<p>")
                .append(product.getString("descriptionHtml")).append("</p>\n<div class=\"columns\">\n");
        details(b, details);
        reviews(b, reviews);
        b.append("</div>\n</body></html>\n");
        return b.toString();
    }

    private static void details(StringBuilder b, ProductPage.Answer details) {
        b.append("<section class=\"details\">\n");
        if (!details.ok()) {
            b.append("<h4 class=\"error\">Error fetching product details!</h4>\n<p class=\"error\">")
                    .append(esc(details.body().getString("error"))).append("</p>\n");
        } else {
            JsonObject d = details.body();
            b.append("<h4>Book Details</h4>\n<dl>\n");
            for (String[] f : new String[][] {{"type", "Type"}, {"pages", "Pages"}, {"publisher", "Publisher"},
                    {"language", "Language"}, {"ISBN-10", "ISBN-10"}, {"ISBN-13", "ISBN-13"}}) {
                b.append("<dt>").append(f[1]).append(":</dt><dd>").append(esc(String.valueOf(d.getValue(f[0]))))
                        .append("</dd>\n");
            }
            b.append("</dl>\n");
        }
        b.append("</section>\n");
    }

    private static void reviews(StringBuilder b, ProductPage.Answer reviews) {
        b.append("<section class=\"reviews\">\n");
        if (!reviews.ok()) {
            b.append("<h4 class=\"error\">Error fetching product reviews!</h4>\n<p class=\"error\">")
                    .append(esc(reviews.body().getString("error"))).append("</p>\n");
        } else {
            b.append("<h4>Book Reviews</h4>\n");
            JsonArray list = reviews.body().getJsonArray("reviews", new JsonArray());
            for (int i = 0; i < list.size(); i++) {
                JsonObject r = list.getJsonObject(i);
                b.append("<blockquote><p>").append(esc(r.getString("text"))).append("</p><small>")
                        .append(esc(r.getString("reviewer"))).append("</small>");
                JsonObject rating = r.getJsonObject("rating");
                if (rating != null && rating.containsKey("stars")) {
                    int stars = rating.getInteger("stars");
                    String color = esc(rating.getString("color"));
                    b.append("<br><span class=\"stars\" style=\"color: ").append(color).append("\" title=\"")
                            .append(stars).append(" ").append(color).append(" stars\">")
                            .append("\u2605".repeat(stars)).append("\u2606".repeat(Math.max(0, 5 - stars)))
                            .append("</span>");
                } else if (rating != null && rating.containsKey("error")) {
                    b.append("<br><span class=\"error\">").append(esc(rating.getString("error"))).append("</span>");
                }
                b.append("</blockquote>\n");
            }
            b.append("<p><small>Reviews served by: ").append(esc(reviews.body().getString("podname")))
                    .append("</small></p>\n");
        }
        b.append("</section>\n");
    }

    static String esc(String s) {
        if (s == null) {
            return "";
        }
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }
}
