package dev.setlist.sql;

import java.util.Set;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.plans.logical.Command;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import scala.Function1;
import scala.runtime.BoxedUnit;

/**
 * Makes `setlist sql-server` read-only for its clients: a Spark check rule refuses, before anything runs,
 * every statement whose plan holds a command that is not on the list of reading commands below (SHOW,
 * DESCRIBE, SET, USE, EXPLAIN) or a Delta write (MERGE, UPDATE, DELETE). Queries are not commands and pass.
 * The server's own session, which registers the lake's tables, is exempted by {@link #exempt}.
 */
public final class ReadOnlyExtensions implements Function1<SparkSessionExtensions, BoxedUnit> {
  private static volatile SparkSession exempted;

  static final Set<String> READING_COMMANDS = Set.of(
      "ShowTables", "ShowTablesCommand", "ShowTableExtended", "ShowNamespaces", "ShowCatalogsCommand",
      "ShowCurrentNamespace", "ShowCurrentNamespaceCommand", "ShowColumns", "ShowColumnsCommand",
      "ShowFunctions", "ShowFunctionsCommand", "ShowViews", "ShowViewsCommand", "ShowPartitions",
      "ShowPartitionsCommand", "ShowTableProperties", "ShowTablePropertiesCommand", "ShowCreateTable",
      "ShowCreateTableCommand", "ShowCreateTableAsSerdeCommand", "DescribeRelation", "DescribeTableCommand",
      "DescribeColumn", "DescribeColumnCommand", "DescribeNamespace", "DescribeDatabaseCommand",
      "DescribeFunction", "DescribeFunctionCommand", "DescribeQueryCommand", "DescribeDeltaHistory",
      "DescribeDeltaHistoryCommand", "DescribeDeltaDetailCommand", "SetCommand", "ResetCommand",
      "SetCatalogAndNamespace", "SetNamespaceCommand", "SetCatalogCommand", "ExplainCommand");

  /** Statements of this session (the server's own) are not checked. */
  public static void exempt(SparkSession session) {
    exempted = session;
  }

  @Override
  public BoxedUnit apply(SparkSessionExtensions extensions) {
    extensions.injectCheckRule(session -> plan -> {
      if (session != exempted) {
        refuseWrites(plan);
      }
      return BoxedUnit.UNIT;
    });
    return BoxedUnit.UNIT;
  }

  static void refuseWrites(LogicalPlan plan) {
    plan.foreach(node -> {
      String name = node.getClass().getSimpleName();
      boolean deltaWrite = name.startsWith("DeltaMerge") || name.startsWith("DeltaUpdate")
          || name.startsWith("DeltaDelete");
      if (deltaWrite || (node instanceof Command && !READING_COMMANDS.contains(name))) {
        throw new UnsupportedOperationException(
            "the Setlist SQL endpoint is read-only: " + name + " is not allowed (queries, SHOW, DESCRIBE,"
                + " SET, USE and EXPLAIN are)");
      }
      return BoxedUnit.UNIT;
    });
  }
}
