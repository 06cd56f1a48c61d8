package org.kgrec.launcher;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.Result;

/**
 * Runs Neo4j Community embedded, speaking Bolt, until the JVM is told to stop (SIGTERM / SIGINT).
 *
 * <p>Usage: {@code Launcher HOME CONF}. HOME is the Neo4j home (data, logs); CONF a neo4j.conf written by
 * {@code kgrec neo4j start} with the Bolt address, memory and plugin settings. The password for the
 * {@code neo4j} user comes from the environment variable {@code KGREC_NEO4J_PASSWORD}: it is set once, on a
 * store whose password was never changed; later starts keep the stored one, so a mismatch shows up as an
 * authentication failure, not as a silent reset.
 *
 * <p>Prints {@code KGREC-READY} on its own line once Bolt answers, {@code KGREC-ERROR: ...} on failure.
 */
public final class Launcher {
    private static final String PASSWORD_ENV = "KGREC_NEO4J_PASSWORD";

    private Launcher() {}

    public static void main(String[] args) {
        if (args.length != 2) {
            fail("usage: Launcher HOME CONF", 2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Path conf = Path.of(args[1]).toAbsolutePath();
        if (!Files.isRegularFile(conf)) {
            fail("config file not found: " + conf, 2);
        }
        String password = System.getenv(PASSWORD_ENV);
        if (password == null || password.length() < 8) {
            fail(PASSWORD_ENV + " must hold the neo4j password (at least 8 characters)", 2);
        }

        DatabaseManagementService dbms;
        try {
            dbms = new DatabaseManagementServiceBuilder(home).loadPropertiesFromFile(conf).build();
        } catch (RuntimeException e) {
            fail("Neo4j did not start: " + rootMessage(e), 1);
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("KGREC-STOPPING");
            dbms.shutdown();
            System.out.println("KGREC-STOPPED");
            System.out.flush();
        }, "kgrec-neo4j-shutdown"));

        try {
            setInitialPassword(dbms.database("system"), password);
        } catch (RuntimeException e) {
            fail("could not set the initial password: " + rootMessage(e), 1);
        }
        System.out.println("KGREC-READY");
        System.out.flush();
        try {
            Thread.currentThread().join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Sets the neo4j user's password only while the store still asks for a first change. */
    private static void setInitialPassword(GraphDatabaseService system, String password) {
        boolean changeRequired = system.executeTransactionally(
                "SHOW USERS YIELD user, passwordChangeRequired WHERE user = 'neo4j' RETURN passwordChangeRequired",
                Map.of(),
                (Result r) -> r.hasNext() && Boolean.TRUE.equals(r.next().get("passwordChangeRequired")));
        if (changeRequired) {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t.getClass().getSimpleName() + ": " + t.getMessage();
    }

    private static void fail(String message, int code) {
        System.out.println("KGREC-ERROR: " + message);
        System.out.flush();
        // halt, not exit: a half-built DBMS must not run shutdown hooks that hang on it.
        Runtime.getRuntime().halt(code);
    }

}
