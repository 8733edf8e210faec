// Java 11+, java.net.http only: a subscription message through the
// gateway. Run with `java Send.java [openid]`.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Send {
    public static void main(String[] args) throws Exception {
        String gateway = System.getenv().getOrDefault("WECHAT_API", "http://127.0.0.1:9001");
        String openid = args.length > 0 ? args[0] : "oUser00000000000000000000001";
        String msg = "{\"touser\":\"" + openid + "\",\"template_id\":\"tmpl-1\","
                + "\"data\":{\"thing1\":{\"value\":\"Your order shipped\"}}}";
        HttpRequest req = HttpRequest.newBuilder(URI.create(gateway + "/cgi-bin/message/subscribe/send"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(msg))
                .build();
        HttpResponse<String> resp = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
        System.out.println(resp.statusCode() + " " + resp.body());
    }
}
