package org.adapter.fhirserver;

/** Command-line options of the launcher: {@code --host H --port N --db PATH|mem}. */
public record ServerOptions(String host, int port, String db) {

	public static final String MEMORY = "mem";

	public static ServerOptions parse(String[] args) {
		String host = "127.0.0.1";
		int port = 8080;
		String db = "data/fhir";
		for (int i = 0; i < args.length; i++) {
			String name = args[i];
			if (name.equals("-h") || name.equals("--help")) {
				throw new IllegalArgumentException("");
			}
			if (i + 1 >= args.length) {
				throw new IllegalArgumentException("missing value for " + name);
			}
			String value = args[++i];
			switch (name) {
				case "--host" -> host = value;
				case "--port" -> port = parsePort(value);
				case "--db" -> db = value;
				default -> throw new IllegalArgumentException("unknown option " + name);
			}
		}
		return new ServerOptions(host, port, db);
	}

	private static int parsePort(String value) {
		try {
			int port = Integer.parseInt(value);
			if (port >= 0 && port <= 65535) {
				return port;
			}
		} catch (NumberFormatException e) {
			// reported below
		}
		throw new IllegalArgumentException("--port must be a number from 0 to 65535, not " + value);
	}

	public boolean inMemory() {
		return MEMORY.equals(db);
	}

	/** JDBC URL of the H2 database: in memory, or the file {@code <db>.mv.db}. */
	public String jdbcUrl() {
		if (inMemory()) {
			return "jdbc:h2:mem:fhir;DB_CLOSE_DELAY=-1";
		}
		String path = db.endsWith(".mv.db") ? db.substring(0, db.length() - ".mv.db".length()) : db;
		// Our shutdown hook closes Spring (and so the pool) first; H2 must not close itself earlier.
		return "jdbc:h2:file:" + java.nio.file.Path.of(path).toAbsolutePath() + ";DB_CLOSE_ON_EXIT=FALSE;TRACE_LEVEL_FILE=0";
	}
}
