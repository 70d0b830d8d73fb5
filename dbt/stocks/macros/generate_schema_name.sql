{#- Every model lives in the target schema itself (STOCKS_GOLD_SCHEMA), not <target>_<custom>:
    tests point the whole project at a schema of their own. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ target.schema }}
{%- endmacro %}
