{#- No two rows share the values of `columns` (dbt_utils' unique_combination_of_columns, kept
    here so the project needs no package download). -#}
{% test unique_together(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
