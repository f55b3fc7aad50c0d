// container_awareness: the downstream the service's pooled connections talk to (a stand-in
// database). `java Downstream PORT DELAY_MS`: every connection gets its own thread; each
// line received is one query, answered with one line after DELAY_MS (the blocking work a
// query costs the caller; the downstream itself has no limit on concurrent connections).
// Prints "ready" once it listens.
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

public final class Downstream {
    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(args[0]);
        long delayMs = Long.parseLong(args[1]);
        try (ServerSocket server = new ServerSocket(port, 1024)) {
            System.out.println("ready");
            System.out.flush();
            while (true) {
                Socket s = server.accept();
                Thread t = new Thread(() -> serve(s, delayMs));
                t.setDaemon(true);
                t.start();
            }
        }
    }

    private static void serve(Socket s, long delayMs) {
        try (s) {
            s.setTcpNoDelay(true);
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(),
                    StandardCharsets.UTF_8));
            Writer out = new OutputStreamWriter(s.getOutputStream(), StandardCharsets.UTF_8);
            while (in.readLine() != null) {
                Thread.sleep(delayMs);
                out.write("done\n");
                out.flush();
            }
        } catch (IOException e) {
            // the caller went away
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
