package dev.inmesh.samples.bookinfo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

/** The product page's HTML for each kind of answer productpage can get from details and reviews. */
class ProductPageHtmlTest {
    static final JsonObject PRODUCT = ProductPage.products().getJsonObject(0);
    static final ProductPage.Answer DETAILS = new ProductPage.Answer(200, Details.details(0));

    static ProductPage.Answer reviews(JsonObject rating) {
        JsonObject review = new JsonObject().put("reviewer", "Reviewer1").put("text", "Good <fun> & games");
        if (rating != null) {
            review.put("rating", rating);
        }
        return new ProductPage.Answer(200, new JsonObject().put("podname", "reviews-v3-14")
                .put("reviews", new JsonArray().add(review)));
    }

    @Test
    void starsShowTheRatingInTheReviewsColour() {
        String html = ProductPageHtml.page(PRODUCT, DETAILS,
                reviews(new JsonObject().put("stars", 4).put("color", "red")), "");
        assertTrue(html.contains("<span class=\"stars\" style=\"color: red\" title=\"4 red stars\">"
                + "\u2605\u2605\u2605\u2605\u2606</span>"), html);
        assertEquals("red stars", Scenario.stars(html));
        assertTrue(html.contains("Reviews served by: reviews-v3-14"));
    }

    @Test
    void reviewsWithoutARatingShowNoStars() {
        String html = ProductPageHtml.page(PRODUCT, DETAILS, reviews(null), "");
        assertFalse(html.contains("class=\"stars\""));
        assertEquals("no stars", Scenario.stars(html));
    }

    @Test
    void aRatingErrorIsShownInPlaceOfTheStars() {
        String html = ProductPageHtml.page(PRODUCT, DETAILS,
                reviews(new JsonObject().put("error", "Ratings service is currently unavailable")), "");
        assertTrue(html.contains("Ratings service is currently unavailable"));
        assertEquals("ratings unavailable", Scenario.stars(html));
    }

    @Test
    void unavailableServicesGetIstiosMessages() {
        String html = ProductPageHtml.page(PRODUCT,
                new ProductPage.Answer(503, new JsonObject().put("error", "Sorry, product details are currently "
                        + "unavailable for this book.")),
                new ProductPage.Answer(500, new JsonObject().put("error", "Sorry, product reviews are currently "
                        + "unavailable for this book.")), "");
        assertTrue(html.contains("Error fetching product details!"));
        assertTrue(html.contains("Sorry, product details are currently unavailable for this book."));
        assertTrue(html.contains("Error fetching product reviews!"));
        assertTrue(html.contains("<h1>The Comedy of Errors</h1>"));
    }

    @Test
    void textFromServicesIsEscapedAndTheUserIsGreeted() {
        String html = ProductPageHtml.page(PRODUCT, DETAILS, reviews(null), "<jason>");
        assertTrue(html.contains("Good &lt;fun&gt; &amp; games"));
        assertTrue(html.contains("&lt;jason&gt; <a href=\"/logout\">sign out</a>"));
        assertFalse(html.contains("action=\"/login\""));
    }

    @Test
    void productIdsAreNonNegativeNumbers() {
        assertEquals(0, Http.productId("/reviews/0", "/reviews/"));
        assertEquals(12, Http.productId("/api/v1/products/12/reviews", "/api/v1/products/"));
        assertEquals(-1, Http.productId("/reviews/zero", "/reviews/"));
        assertEquals(-1, Http.productId("/reviews/-3", "/reviews/"));
        assertEquals(-1, Http.productId("/reviews/", "/reviews/"));
    }

    @Test
    void thePodNameTellsTheVersion() {
        assertEquals("v2", Scenario.version("reviews-v2-13"));
        assertEquals("null", Scenario.version(null));
    }
}
