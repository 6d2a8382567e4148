"""The recommendations explorer, a Streamlit page: ``make explorer`` (``setlist explorer``).

Reads the lake named by ``SETLIST_LAKE`` through :mod:`include.serving.explorer` (delta-rs and DuckDB, never Spark);
writes nothing. Asks for the explorer password (``SETLIST_EXPLORER_PASSWORD``, or the generated one in
``~/.config/setlist/explorer-password``) before it shows anything.
"""

from __future__ import annotations

import json

import streamlit as st

from include.core import credentials
from include.core.config import RANGES, load_settings
from include.serving import explorer

st.set_page_config(page_title="Setlist explorer", layout="wide")
st.title("Setlist: recommendations explorer")

if not st.session_state.get("signed_in"):
    given = st.text_input("Password", type="password", key="password")
    if given and credentials.matches(given, credentials.password("explorer", "SETLIST_EXPLORER_PASSWORD")):
        st.session_state["signed_in"] = True
        st.rerun()
    if given:
        st.error("Wrong password.")
    st.stop()

lake = load_settings().lake
try:
    run = explorer.run_summary(lake)
except LookupError as exc:
    st.warning(str(exc))
    st.stop()

low_k, high_k = RANGES["top_k"]
user_id = st.sidebar.text_input("User id", value=run.example_user, key="user").strip()
k = int(st.sidebar.number_input("Top K", min_value=int(low_k), max_value=int(high_k), value=10, key="k"))
st.sidebar.caption(f"Lake: {lake}")

st.caption(
    f"Newest run {run.run_date}: {run.users:,} users, {run.rows:,} recommendations, "
    f"{run.tracks_recommended:,} of {run.catalog_tracks:,} catalog tracks recommended "
    f"(coverage {run.catalog_coverage:.1%})."
)

recs_tab, pipeline_tab, data_tab = st.tabs(["Recommendations", "Pipeline", "Data"])

with recs_tab:
    view = explorer.user_view(user_id, k, lake)
    if view.known:
        st.subheader(f"Top {k} for {user_id}")
    else:
        st.info(f"User {user_id!r} is not in the run of {run.run_date}: showing the most popular tracks instead.")
        st.subheader(f"Top {k} most popular tracks")
    st.dataframe(view.recommendations.drop(columns=["user_id", "run_date"]), hide_index=True)
    versions = sorted({v for v in view.recommendations["model_version"] if v})
    if versions:
        st.subheader("Model")
        models = explorer.models(versions, lake)
        for _, model in models.iterrows():
            st.write(f"`{model['model_version']}` ({model['mode']}), trained {model['trained_at']}")
            st.json(json.loads(model["params"]), expanded=False)
        st.dataframe(models.drop(columns=["params"]), hide_index=True)
    runs = explorer.model_runs(lake)
    if not runs.empty:
        st.subheader("Model evaluations (held-out split, beside the baselines)")
        st.dataframe(runs, hide_index=True)
    st.subheader("Recent listening")
    if view.recent.empty:
        st.write("No plays recorded for this user.")
    else:
        st.dataframe(view.recent, hide_index=True)

with pipeline_tab:
    st.subheader("Rows per layer (in = out + quarantined + duplicates)")
    st.dataframe(explorer.layer_counts(lake), hide_index=True)
    st.subheader("Data quality checks per day")
    st.dataframe(explorer.dq_by_day(lake), hide_index=True)
    failed = explorer.dq_not_passed(lake)
    st.write("Checks that did not pass:" if not failed.empty else "Every check passed.")
    if not failed.empty:
        st.dataframe(failed, hide_index=True)
    st.subheader("Quarantined rows")
    st.dataframe(explorer.quarantine_counts(lake), hide_index=True)
    st.subheader("Failed task tries")
    st.dataframe(explorer.failures(lake), hide_index=True)

with data_tab:
    st.subheader("Rating distribution (all days)")
    ratings = explorer.rating_distribution(lake)
    if not ratings.empty:
        st.bar_chart(ratings.set_index("rating"))
    st.subheader("Daily activity")
    daily = explorer.daily_activity(lake)
    if not daily.empty:
        st.line_chart(daily.set_index("run_date")[["events", "unique_users", "unique_tracks"]])
        st.dataframe(daily, hide_index=True)
